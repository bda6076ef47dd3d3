"""CLI sign-in routes (docs/api.md § CLI sign-in), mounted with the other sign-in routes.

``POST /api/v1/auth/device`` starts the device authorization grant (RFC 8628) at the
provider; ``POST /api/v1/auth/device/token`` polls it and, once the user approved, answers
with a new API token (``service.device``). Neither needs a signed-in user; both are
rate-limited per client like the other unauthenticated POSTs.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from burnlink.errors import LoginRequired, SignInRefused
from burnlink.service.device import DeviceSignIn
from burnlink.service.secrets import SecretService
from burnlink.service.tokens import TokenService
from burnlink.web.api import client_of
from burnlink.web.device_schemas import (
    DeviceStartResponse,
    DeviceTokenRequest,
    DeviceTokenResponse,
)
from burnlink.web.errors import NO_STORE, error_response, error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.principal import signin_of

__all__ = ["SLOW_DOWN_SECONDS", "STATUS", "router"]

router = APIRouter(prefix="/api/v1/auth", tags=["identity"], route_class=StrictJSONRoute)

SLOW_DOWN_SECONDS: Final = 5
"""RFC 8628 §3.5: on ``slow_down`` the client adds 5 seconds to its polling interval."""
STATUS: Final = {
    "authorization_pending": 400,
    "slow_down": 400,
    "expired_token": 400,
    "access_denied": 403,
    "mfa_required": 403,
    "create_not_allowed": 403,
    "id_token_invalid": 403,
    "id_token_expired": 403,
    "device_flow_unavailable": 404,
    "provider_error": 503,
    "provider_unavailable": 503,
}
"""The API status of each ``SignInRefused`` reason; the reason is the error's ``code``."""


def _device(request: Request) -> DeviceSignIn:
    signin = signin_of(request)
    if signin is None:  # pragma: no cover - the router is mounted only with sign-in
        raise LoginRequired
    tokens: TokenService = request.app.state.tokens
    return DeviceSignIn(signin, tokens)


async def _rate_limit(request: Request, action: str, rule: str) -> None:
    service: SecretService = request.app.state.service
    await service.access.limiter.check(
        action,
        service.settings.limit("create" if rule == "create" else "reveal"),
        client_of(request).ip,
        now=service.clock.now(),
    )


def _refused(exc: SignInRefused) -> JSONResponse:
    status = STATUS.get(exc.reason, 403)
    retry = SLOW_DOWN_SECONDS if exc.reason == "slow_down" else None
    return error_response(status, exc.reason, str(exc), retry_after=retry)


@router.post(
    "/device",
    response_model=DeviceStartResponse,
    responses=error_responses(
        404,
        429,
        503,
        notes={
            404: "`device_flow_unavailable`: the identity provider's discovery has no"
            " `device_authorization_endpoint`, or it does not allow the grant to this server's"
            " client. Use a pasted API token instead. (Without sign-in configured, the route"
            " does not exist: `not_found`.)",
            503: "`provider_unavailable` or `provider_error`: the identity provider did not"
            " answer, or answered with an error. Retrying later is safe.",
        },
    ),
)
async def start(request: Request) -> DeviceStartResponse | JSONResponse:
    """Start a CLI sign-in: show ``user_code`` to the user, who enters it at
    ``verification_uri`` (or opens ``verification_uri_complete``), then poll
    ``POST /api/v1/auth/device/token`` with ``device_code`` every ``interval`` seconds."""
    await _rate_limit(request, "device", "create")
    try:
        started = await _device(request).start()
    except SignInRefused as exc:
        return _refused(exc)
    answer = DeviceStartResponse(
        user_code=started.user_code,
        verification_uri=started.verification_uri,
        verification_uri_complete=started.verification_uri_complete,
        device_code=started.device_code,
        interval=started.interval,
        expires_in=started.expires_in,
    )
    return JSONResponse(answer.model_dump(mode="json"), headers=NO_STORE)


@router.post(
    "/device/token",
    response_model=DeviceTokenResponse,
    responses=error_responses(
        400,
        403,
        404,
        413,
        415,
        422,
        429,
        503,
        notes={
            400: "Not yet: `authorization_pending` (the user has not approved yet: poll again"
            " after `interval` seconds) or `slow_down` (add `retry_after` seconds to the"
            " interval, RFC 8628 §3.5); or over: `expired_token` (the code expired or was used:"
            " start again). Also `malformed_json`.",
            403: "Refused (start again): `access_denied` (the user denied the sign-in at the"
            " identity provider), `mfa_required` (`BURNLINK_OIDC_REQUIRE_MFA` and the sign-in"
            " carried no second factor), `create_not_allowed` (the user is outside"
            " `BURNLINK_CREATE_ALLOWED_DOMAINS` and `_GROUPS`), `id_token_invalid` or"
            " `id_token_expired` (the provider's ID token did not verify).",
            404: "`device_flow_unavailable`: the identity provider does not offer the grant.",
            422: "`invalid_field`: `device_code` (1-512 characters) or `name` (1-64 printable"
            " characters) is missing, too long or not a string, or a member is unknown.",
            503: "`provider_unavailable` or `provider_error`: the identity provider did not"
            " answer, or answered with an error. Polling again is safe.",
        },
    ),
)
async def token(request: Request, body: DeviceTokenRequest) -> DeviceTokenResponse | JSONResponse:
    """Poll a CLI sign-in; once the user approved it, a new API token (every scope, 90 days)
    named ``name``. The token is in this answer only: it is never shown again."""
    await _rate_limit(request, "device-poll", "reveal")
    try:
        issued = await _device(request).complete(
            body.device_code, name=body.name, client=client_of(request)
        )
    except SignInRefused as exc:
        return _refused(exc)
    record = issued.record
    answer = DeviceTokenResponse(
        token=issued.token,
        token_id=record.token_id,
        name=record.name,
        scopes=list(record.scopes),
        expires_at=record.expires_at,
        subject=record.subject,
        email=record.email,
    )
    return JSONResponse(answer.model_dump(mode="json"), headers=NO_STORE)
