"""JSON API v1 routes: parse the request, call ``SecretService``, shape the answer (docs/api.md)."""

from __future__ import annotations

import base64
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import Scope

from burnlink.clientip import ClientAddress
from burnlink.crypto import KEY_BYTES, Payload
from burnlink.envelope import Envelope
from burnlink.errors import InvalidInput, SecretUnavailable
from burnlink.ids import b64url_decode, b64url_encode
from burnlink.models import ClientInfo
from burnlink.policy import build_policy, mask_email
from burnlink.service import SecretService
from burnlink.service.secrets import Receipt
from burnlink.useragents import classify
from burnlink.web.base_url import public_base
from burnlink.web.errors import error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.languages import api_language
from burnlink.web.principal import carries_credentials, principal_of, recipient_of
from burnlink.web.request_headers import header
from burnlink.web.schemas import (
    ActorBody,
    AgentBody,
    ConsumeRequest,
    ConsumeResponse,
    CreateSecretRequest,
    CreateSecretResponse,
    EventBody,
    FileBody,
    PassphraseParams,
    PolicyResponse,
    ReceiptResponse,
    RevealRequest,
    RevealResponse,
    SecretInfoResponse,
    SignInParams,
    VerificationParams,
    ViewerBody,
)

router = APIRouter(prefix="/api/v1", tags=["secrets"], route_class=StrictJSONRoute)
_bearer = HTTPBearer(auto_error=False, description="An access token or a manage token.")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_service(request: Request) -> SecretService:
    """The app's one ``SecretService``."""
    service: SecretService = request.app.state.service
    return service


Service = Annotated[SecretService, Depends(get_service)]

_CLIENT_IP = "client_ip"


def client_address(scope: Scope) -> str | None:
    """The client's address: the peer, or what trusted proxies say (``burnlink.clientip``).

    Worked out once per request and kept in its state; only the one header named by
    ``BURNLINK_PROXY_HEADER`` is read, all its lines, and only when trusted proxies are
    configured.
    """
    state = scope.setdefault("state", {})
    if _CLIENT_IP not in state:
        peer = scope.get("client")
        resolver: ClientAddress = scope["app"].state.client_address
        lines = Headers(scope=scope).getlist(resolver.header) if resolver.trusted else []
        state[_CLIENT_IP] = resolver.resolve(peer[0] if peer else None, lines)
    address: str | None = state[_CLIENT_IP]
    return address


def client_of(request: Request) -> ClientInfo:
    """Who sent the request: address, user agent, the request's id (``middleware.Edge``) and
    the language it reads (``Accept-Language``, which the pages set to their own)."""
    return ClientInfo(
        ip=client_address(request.scope),
        user_agent=header(request.scope, b"user-agent"),
        request_id=(request.scope.get("state") or {}).get("request_id"),
        language=api_language(request),
    )


def token_of(credentials: HTTPAuthorizationCredentials | None) -> bytes:
    """The 32-byte token in ``Authorization: Bearer``; a missing or malformed one is a 404."""
    try:
        if credentials is None:
            raise SecretUnavailable
        return b64url_decode(credentials.credentials, field="token", length=KEY_BYTES)
    except InvalidInput:
        raise SecretUnavailable from None


@router.get(
    "/policy",
    response_model=PolicyResponse,
    tags=["server"],
    responses=error_responses(
        401,
        503,
        notes={
            401: "`invalid_token`: the bearer API token is unknown, revoked, expired or"
            " malformed (the policy of a token that is not live is not guessed at).",
        },
    ),
)
async def server_policy(request: Request, service: Service) -> PolicyResponse:
    """The limits a new secret of the caller must respect: the server's, tightened by the
    caller's teams when the request carries a session cookie or an API token. Holds nothing
    secret."""
    principal = await principal_of(request) if carries_credentials(request.scope) else None
    s = service.settings
    rules = service.team_rules(principal)
    r = rules.resolution
    return PolicyResponse(
        min_ttl=s.min_ttl,
        max_ttl=r.max_ttl,
        default_ttl=rules.default_ttl_cut,
        max_views=r.max_views,
        max_bytes=s.max_bytes,
        passphrase_attempts=s.passphrase_attempts,
        pbkdf2_iterations=s.pbkdf2_iterations,
        require_passphrase=r.require_passphrase,
        allowed_countries=s.allowed_countries,
        recipient_verification=service.recipient_verification,
        notifications=service.notifications,
        recipients=s.sign_in,
        teams=list(r.teams),
        may_create=r.may_create and service.create_policy.allows(principal),
        refusal=r.refusal,
        recipients_required=r.recipients_required,
        recipients_inside=r.recipients_inside,
        recipients_require_mfa=r.recipients_require_mfa,
        organisation_domains=s.organisation_domains if r.recipients_inside else [],
        team_countries=None if r.countries is None else list(r.countries),
        imposed_by={rule: list(names) for rule, names in r.imposed.items()},
    )


@router.post(
    "/secrets",
    status_code=201,
    response_model=CreateSecretResponse,
    responses=error_responses(
        400,
        403,
        413,
        415,
        422,
        429,
        503,
        401,
        notes={
            401: "`login_required`: this server lets only signed-in users create"
            " (`login_url` says where to sign in); `invalid_token`: the bearer API token is"
            " unknown, revoked, expired or malformed.",
            403: "`ip_denied`: this client's address may not create secrets;"
            " `create_not_allowed`: the signed-in user is outside the domains and groups that"
            " may, or in a team that may not; `insufficient_scope`: the API token lacks"
            " `secrets:create`; `team_policy`: the request asks for more than the sender's"
            " teams allow (`field` names the rule, `teams` the teams that set it).",
        },
    ),
)
async def create_secret(
    body: CreateSecretRequest, request: Request, service: Service
) -> CreateSecretResponse:
    """Create a secret from plaintext (curl mode) or from a client-sealed envelope; with a
    session or an API token (``Authorization: Bearer blk_...``) the signed-in user owns it."""
    # Anonymous creates on a server open to anyone (the common case) skip the lookup entirely.
    principal = (
        await principal_of(request)
        if service.create_policy.requires_login or carries_credentials(request.scope)
        else None
    )
    client = client_of(request)
    policy = build_policy(
        allowed_ips=body.allowed_ips,
        allowed_countries=body.allowed_countries,
        denied_countries=body.denied_countries,
        recipient_email=body.recipient_email,
        recipients=body.recipients,
        require_mfa=body.require_mfa,
    )
    fragment = ""
    if body.secret is not None:
        try:
            content = body.secret.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("secret", "contains an unpaired surrogate") from None
        created, link_key = await service.create_plaintext(
            Payload(content),
            passphrase=body.passphrase,
            ttl=body.ttl,
            max_views=body.max_views,
            client=client,
            policy=policy,
            notify_url=body.notify_url,
            principal=principal,
            label=body.label,
        )
        fragment = "#" + b64url_encode(link_key)
    else:
        if body.envelope is None or body.access_token is None:  # pragma: no cover - schema
            raise InvalidInput("envelope", "needs access_token")
        envelope = Envelope.from_json(
            body.envelope.model_dump(exclude_unset=True),
            min_iterations=service.settings.pbkdf2_iterations,
        )
        proof = body.passphrase_proof
        created = await service.create(
            envelope,
            b64url_decode(body.access_token, field="access_token", length=KEY_BYTES),
            b64url_decode(proof, field="passphrase_proof", length=KEY_BYTES) if proof else None,
            ttl=body.ttl,
            max_views=body.max_views,
            client=client,
            policy=policy,
            notify_url=body.notify_url,
            principal=principal,
            label=body.label,
        )
    base = public_base(request, service)
    return CreateSecretResponse(
        id=created.secret_id,
        url=f"{base}/s/{created.secret_id}{fragment}",
        manage_url=f"{base}/m/{created.secret_id}#{b64url_encode(created.manage_token)}",
        expires_at=created.expires_at,
        max_views=created.max_views,
    )


@router.post(
    "/secrets/{secret_id}/reveal",
    response_model=RevealResponse,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503),
)
async def reveal_secret(
    secret_id: str, body: RevealRequest, request: Request, service: Service
) -> RevealResponse:
    """Take one view and decrypt it on the server (for curl; other clients use ``consume``)."""
    try:
        link_key = b64url_decode(body.key, field="key", length=KEY_BYTES)
    except InvalidInput:
        raise SecretUnavailable from None
    payload, views_left = await service.reveal_plaintext(
        secret_id,
        link_key,
        body.passphrase,
        otp=body.otp,
        client=client_of(request),
        identify=lambda: recipient_of(request),
    )
    text = payload.text_or_none()
    if text is None:
        file = FileBody(
            name=payload.name,
            mime=payload.mime,
            content_base64=base64.b64encode(payload.content).decode("ascii"),
        )
        return RevealResponse(secret=None, file=file, views_left=views_left)
    return RevealResponse(secret=text, views_left=views_left)


@router.get(
    "/secrets/{secret_id}",
    response_model=SecretInfoResponse,
    responses=error_responses(
        403,
        404,
        429,
        503,
        notes={403: "The client's address or country is not allowed (`ip_denied`, `geo_denied`)."},
    ),
)
async def secret_info(
    secret_id: str, credentials: Bearer, request: Request, service: Service
) -> SecretInfoResponse:
    """Metadata for the holder of the link (access token as bearer). Consumes nothing."""
    meta = await service.peek(secret_id, token_of(credentials), client=client_of(request))
    gate = meta.passphrase
    email = meta.policy.recipient_email
    return SecretInfoResponse(
        id=meta.secret_id,
        created_at=meta.created_at,
        expires_at=meta.expires_at,
        max_views=meta.max_views,
        views_left=meta.views_left,
        attempts_left=meta.attempts_left,
        passphrase=PassphraseParams(
            kdf=gate.kdf, iterations=gate.iterations, salt=b64url_encode(gate.salt)
        )
        if gate
        else None,
        verification=VerificationParams(method="email", hint=mask_email(email)) if email else None,
        sign_in=SignInParams(require_mfa=meta.policy.require_mfa)
        if meta.policy.recipients
        else None,
    )


@router.post(
    "/secrets/{secret_id}/consume",
    response_model=ConsumeResponse,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503),
)
async def consume_secret(
    secret_id: str,
    credentials: Bearer,
    request: Request,
    service: Service,
    body: ConsumeRequest | None = None,
) -> ConsumeResponse:
    """Take one view and return its envelope, to decrypt on the client (end-to-end mode)."""
    token = token_of(credentials)
    proof_text = body.passphrase_proof if body else None
    proof = b64url_decode(proof_text, field="passphrase_proof") if proof_text else None
    otp = body.otp if body else None
    consumed = await service.consume(
        secret_id,
        token,
        proof,
        otp=otp,
        client=client_of(request),
        identify=lambda: recipient_of(request),
    )
    return ConsumeResponse(
        envelope=Envelope.from_bytes(consumed.envelope).to_json(),
        views_left=consumed.views_left,
    )


@router.get(
    "/secrets/{secret_id}/receipt",
    response_model=ReceiptResponse,
    responses=error_responses(404, 503),
)
async def secret_receipt(
    secret_id: str, credentials: Bearer, request: Request, service: Service
) -> ReceiptResponse:
    """The sender's receipt (manage token as bearer): state, counts and events, never content;
    once the secret has ended, a signed statement saying how (proof of burn)."""
    receipt = await service.receipt(
        secret_id, token_of(credentials), issuer=public_base(request, service)
    )
    return receipt_body(receipt, service)


def receipt_body(receipt: Receipt, service: SecretService) -> ReceiptResponse:
    """The answer for ``receipt``, the same through the manage link and "my secrets":
    ``created_by`` names the owner with the email they had when creating it."""
    record = receipt.record
    created_by = None
    if record.owner is not None:
        created_by = ActorBody(subject=record.owner, email=record.owner_email)
    return ReceiptResponse.of(
        receipt,
        events=[
            EventBody(
                at=e.at,
                type=e.kind.value,
                ip=e.ip,
                user_agent=e.user_agent,
                country=service.country_of(e.ip),
                agent=AgentBody.of(classify(e.user_agent)) if e.user_agent else None,
                viewer=None
                if e.viewer is None
                else ViewerBody(email=e.viewer.email, mfa=e.viewer.mfa),
            )
            for e in receipt.events
        ],
        events_capped=[kind.value for kind in receipt.capped],
        statement=json.loads(receipt.statement) if receipt.statement else None,
        label=record.label,
        created_by=created_by,
    )


@router.delete(
    "/secrets/{secret_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(400, 404, 413, 415, 503),
)
async def burn_secret(
    secret_id: str, credentials: Bearer, request: Request, service: Service
) -> Response:
    """Burn the secret now (manage token as bearer). Burning an ended secret is not an error."""
    await service.burn(secret_id, token_of(credentials), client=client_of(request))
    return Response(status_code=204)
