"""``/api/v1/requests``: ask for a secret, answer a request once, wait for and open the
answer (docs/api.md § Requests). Thin: parse, call ``RequestService``, answer.

Tokens travel as ``Authorization: Bearer``: the request link's token for the answering side,
the requester's token for the requester. A missing, malformed or wrong token is the same
``404 not_found`` as an unknown id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from burnlink.ids import b64url_encode
from burnlink.service.requests import MAX_WAIT, RequestService
from burnlink.store.requests import StoredRequest
from burnlink.web.api import Bearer, Service, client_of, token_of
from burnlink.web.base_url import public_base
from burnlink.web.errors import error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.principal import carries_credentials, principal_of, recipient_of
from burnlink.web.request_schemas import (
    AnswerRequest,
    AnswerResponse,
    AnswerState,
    CreateRequestBody,
    CreateRequestResponse,
    OpenAnswerRequest,
    OpenAnswerResponse,
    RequestStatusResponse,
    RequestView,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["requests"], route_class=StrictJSONRoute)


async def get_requests(request: Request) -> RequestService:
    """The app's one ``RequestService``."""
    service: RequestService = request.app.state.requests
    return service


Requests = Annotated[RequestService, Depends(get_requests)]

_404 = "`not_found`: unknown or malformed id, missing or wrong token (the same answer)."
_CREATE_NOTES = {
    401: "`login_required`: this server lets only signed-in users create (`login_url` says"
    " where to sign in); `invalid_token`: the bearer API token is unknown, revoked, expired or"
    " malformed.",
    403: "`ip_denied`: this client's address may not create; `create_not_allowed`: the"
    " signed-in user is outside the domains and groups that may; `insufficient_scope`: the API"
    " token lacks `secrets:create`.",
}
_ANSWERING_NOTES = {
    401: "`login_required`: the request is for signed-in recipients and nobody is signed in"
    " (`login_url` says where); `invalid_token`: the API token in `X-Burnlink-Token` is not"
    " live.",
    403: "`recipient_mismatch`: the signed-in user is none of the request's recipients;"
    " `csrf_failed`: a session request without its CSRF token.",
    404: _404,
}


@router.post(
    "/requests",
    status_code=201,
    response_model=CreateRequestResponse,
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503, notes=_CREATE_NOTES),
)
async def create_request(
    body: CreateRequestBody, request: Request, requests: Requests, service: Service
) -> CreateRequestResponse:
    """Ask for a secret. Rate limited, and allowed, as creating a secret is."""
    principal = (
        await principal_of(request)
        if service.create_policy.requires_login or carries_credentials(request.scope)
        else None
    )
    created = await requests.create(
        public_key=body.public_key,
        description=body.description,
        ttl=body.ttl,
        answer_ttl=body.answer_ttl,
        answer_views=body.answer_views,
        recipients=tuple(body.recipients),
        notify_url=body.notify_url,
        notify_email=body.notify_email,
        client=client_of(request),
        principal=principal,
    )
    base = public_base(request, service)
    return CreateRequestResponse(
        id=created.request_id,
        url=f"{base}/r/{created.request_id}",
        requester_url=f"{base}/k/{created.request_id}",
        link_token=b64url_encode(created.link_token),
        requester_token=b64url_encode(created.requester_token),
        expires_at=created.expires_at,
        answer_ttl=created.answer_ttl,
        answer_views=created.answer_views,
    )


def _view(found: StoredRequest, max_bytes: int) -> RequestView:
    record = found.record
    return RequestView(
        id=record.request_id,
        description=record.description,
        public_key=b64url_encode(record.public_key),
        state=found.state.value,
        expires_at=record.expires_at,
        answer_ttl=record.answer_ttl,
        answer_views=record.answer_views,
        max_bytes=max_bytes,
        recipients_only=bool(record.recipients),
    )


@router.get(
    "/requests/{request_id}",
    response_model=RequestView,
    responses=error_responses(401, 403, 404, 429, 503, notes=_ANSWERING_NOTES),
)
async def view_request(
    request_id: str, credentials: Bearer, request: Request, requests: Requests
) -> RequestView:
    """The request for the answering side (the request link's token as bearer)."""
    found = await requests.view(
        request_id,
        token_of(credentials),
        client=client_of(request),
        identify=lambda: recipient_of(request),
    )
    return _view(found, requests.secrets.settings.max_bytes)


@router.post(
    "/requests/{request_id}/answer",
    status_code=201,
    response_model=AnswerResponse,
    responses=error_responses(
        400, 401, 403, 404, 409, 410, 413, 415, 422, 429, 503, notes=_ANSWERING_NOTES
    ),
)
async def answer_request(
    request_id: str,
    body: AnswerRequest,
    credentials: Bearer,
    request: Request,
    requests: Requests,
    service: Service,
) -> AnswerResponse:
    """Submit the one answer, sealed to the request's public key (the request link's token
    as bearer). A second answer (`already_answered`), one after expiry (`request_expired`),
    one that is malformed or sealed to another key (`invalid_envelope`) or too large
    (`payload_too_large`) changes nothing."""
    answered = await requests.answer(
        request_id,
        token_of(credentials),
        body.answer,
        client=client_of(request),
        identify=lambda: recipient_of(request),
    )
    base = public_base(request, service)
    return AnswerResponse(
        secret_id=answered.secret_id,
        manage_url=f"{base}/m/{answered.secret_id}#{b64url_encode(answered.manage_token)}",
        expires_at=answered.expires_at,
        max_views=answered.max_views,
    )


@router.get(
    "/requests/{request_id}/status",
    response_model=RequestStatusResponse,
    responses=error_responses(404, 422, 429, 503, notes={404: _404}),
)
async def request_status(
    request_id: str,
    credentials: Bearer,
    request: Request,
    requests: Requests,
    wait: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_WAIT,
            description="Seconds to wait for the answer (long poll); 0 answers at once.",
        ),
    ] = 0,
) -> RequestStatusResponse:
    """The request for its requester (the requester's token as bearer); with `wait`, the
    answer comes as soon as the request is answered or expires, or after `wait` seconds."""
    status = await requests.status(
        request_id, token_of(credentials), client=client_of(request), wait=wait
    )
    record = status.request.record
    answer = None
    if status.answer_expires_at is not None and status.answer_views_left is not None:
        answer = AnswerState(
            expires_at=status.answer_expires_at, views_left=status.answer_views_left
        )
    return RequestStatusResponse(
        id=record.request_id,
        state=status.request.state.value,
        description=record.description,
        public_key=b64url_encode(record.public_key),
        created_at=record.created_at,
        expires_at=record.expires_at,
        answered_at=status.request.answered_at,
        answer=answer,
    )


@router.post(
    "/requests/{request_id}/open",
    response_model=OpenAnswerResponse,
    responses=error_responses(400, 404, 409, 410, 413, 415, 422, 429, 503, notes={404: _404}),
)
async def open_answer(
    request_id: str,
    credentials: Bearer,
    request: Request,
    requests: Requests,
    body: OpenAnswerRequest | None = None,
) -> OpenAnswerResponse:
    """Take one view of the answer (the requester's token as bearer), with every rule of a
    secret; `not_answered` before it arrives, `not_found` once it is gone."""
    sealed, views_left = await requests.open(
        request_id, token_of(credentials), client=client_of(request)
    )
    return OpenAnswerResponse(answer=sealed, views_left=views_left)
