"""``principal_of``: who a request acts for, from its ``Authorization: Bearer blk_...`` API
token or its session cookie; ``None`` for an anonymous request (docs/identity.md).

A small dispatcher: the bearer half is here (``service.tokens``), the cookie half belongs to
the sign-in module. The answer is kept in the request's state, so a route and its
dependencies resolve it once. A request with neither an ``authorization`` nor a ``cookie``
header costs one look at the raw header list and no store call (``carries_credentials``).
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.types import Scope

from burnlink.errors import InsufficientScope, LoginRequired
from burnlink.identity.principal import Principal
from burnlink.identity.tokens import is_api_token
from burnlink.ids import token_digest
from burnlink.service import SecretService
from burnlink.service.tokens import TokenService

__all__ = [
    "carries_credentials",
    "login_url",
    "principal_of",
    "require_principal",
    "require_scope",
]

_STATE_KEY: Final = "burnlink.principal"
_UNSET: Final[Any] = object()
_BEARER: Final = "bearer "


def carries_credentials(scope: Scope) -> bool:
    """Whether the request has an ``authorization`` or ``cookie`` header at all (raw, cheap)."""
    return any(name in (b"authorization", b"cookie") for name, _ in scope.get("headers", ()))


def login_url(request: Request) -> str:
    """The sign-in route, coming back to the page the request was for (relative paths only)."""
    from urllib.parse import quote

    path = request.url.path if not request.url.path.startswith("/api/") else "/"
    return f"/auth/login?next={quote(path, safe='')}"


def _api_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None or header[: len(_BEARER)].lower() != _BEARER:
        return None
    credential = header[len(_BEARER) :].strip()
    # Other bearers (a secret's access or manage token) are the secret routes' own business.
    return credential if is_api_token(credential) else None


SESSION_COOKIES: Final = ("__Host-burnlink_session", "burnlink_session")
SESSION_IDLE_SECONDS: Final = 8 * 3600


async def _session_principal(request: Request) -> Principal | None:
    """The cookie half: the session the cookie names, touched (idle timeout) in the store.

    A stand-in until the sign-in module's own half (its settings, its CSRF check) replaces it;
    it follows the shared contract: the store key is ``token_digest`` of the cookie's value.
    """
    value = next((v for name in SESSION_COOKIES if (v := request.cookies.get(name))), None)
    if value is None or len(value) > 128:
        return None
    service: SecretService = request.app.state.service
    record = await service.store.touch_session(
        token_digest(value.encode()), now=service.clock.now(), idle_seconds=SESSION_IDLE_SECONDS
    )
    if record is None:
        return None
    return Principal(
        subject=record.subject,
        email=record.email,
        groups=record.groups,
        mfa=record.mfa,
        auth_time=record.auth_time,
        via="session",
    )


async def principal_of(request: Request) -> Principal | None:
    """The signed-in user the request acts for; ``None`` when anonymous. A bearer API token
    that is not live raises ``InvalidApiToken`` (never silently anonymous)."""
    state = request.scope.setdefault("state", {})
    known = state.get(_STATE_KEY, _UNSET)
    if known is not _UNSET:
        principal: Principal | None = known
        return principal
    principal = None
    if carries_credentials(request.scope):
        token = _api_token(request)
        if token is not None:
            tokens: TokenService = request.app.state.tokens
            principal = await tokens.authenticate(token)
        else:
            principal = await _session_principal(request)
    state[_STATE_KEY] = principal
    return principal


async def require_principal(request: Request) -> Principal:
    """The signed-in user; ``LoginRequired`` (with where to sign in) for an anonymous request."""
    principal = await principal_of(request)
    if principal is None:
        raise LoginRequired(login_url(request))
    return principal


def require_scope(principal: Principal, scope: str) -> None:
    """Return when ``principal`` may do what ``scope`` names; else ``InsufficientScope``."""
    if not principal.may(scope):
        raise InsufficientScope(scope)
