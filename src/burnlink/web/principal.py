"""``principal_of(request)``: who a request acts for, from its API token or its session cookie;
``None`` for an anonymous request (docs/identity.md). A small dispatcher: each half resolves
its own credential, and the answer is kept in the request's state so a route and its
dependencies resolve it once. A request with neither an ``authorization`` nor a ``cookie``
header costs one look at the raw header list and no store call (``carries_credentials``).

Bearer half (``Authorization: Bearer blk_...``): a personal API token (``service.tokens``); one
that is not live raises ``InvalidApiToken``, never silently anonymous. A request with an
``Authorization`` header is never authenticated by its cookie.

Session half: the cookie (``__Host-burnlink_session``, or ``burnlink_session`` on plain http
loopback) names a session the store still holds (idle and absolute timeouts applied there).
A request that changes state (POST, PUT, PATCH, DELETE) and is authenticated by the cookie
must carry the session's CSRF token in ``X-Burnlink-CSRF`` and, when it sends ``Origin``, come
from this site's origin; else ``CsrfFailed`` (403 ``csrf_failed``). Requests with an
``Authorization`` header are not cookie-authenticated: a page on another site cannot set one.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from fastapi import Request
from starlette.types import Scope

from burnlink.errors import CsrfFailed, InsufficientScope, LoginRequired
from burnlink.hosts import is_loopback
from burnlink.identity.principal import Principal
from burnlink.identity.sessions import CSRF_HEADER, CookieNames, cookie_names, csrf_matches
from burnlink.identity.tokens import is_api_token
from burnlink.service.signin import SignInService
from burnlink.service.tokens import TokenService
from burnlink.web.base_url import base_of

__all__ = [
    "UNSAFE_METHODS",
    "carries_credentials",
    "cookie_names_of",
    "principal_of",
    "recipient_of",
    "require_principal",
    "require_scope",
    "session_cookie",
    "signin_of",
]

UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RESOLVED: Final = "burnlink.principal"
_UNSET: Final[Any] = object()
_BEARER: Final = "bearer "
RECIPIENT_TOKEN_HEADER: Final = "x-burnlink-token"  # noqa: S105 - a header name
"""Where a reveal sends an API token when ``Authorization`` carries the secret's access token
(``consume``)."""


def carries_credentials(scope: Scope) -> bool:
    """Whether the request has an ``authorization`` or ``cookie`` header at all (raw, cheap)."""
    return any(name in (b"authorization", b"cookie") for name, _ in scope.get("headers", ()))


def signin_of(request: Request) -> SignInService | None:
    """The app's sign-in service; ``None`` when sign-in is not configured."""
    service: SignInService | None = getattr(request.app.state, "signin", None)
    return service


def cookie_names_of(request: Request) -> CookieNames | None:
    """The sign-in cookies for this request's origin: ``__Host-`` ones over https, plain ones
    over http on loopback; ``None`` over http anywhere else (no sign-in there)."""
    parts = urlsplit(base_of(request))
    if parts.scheme == "https":
        return cookie_names(secure=True)
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return cookie_names(secure=False)
    return None


def session_cookie(request: Request) -> str | None:
    """The session cookie's value, if the request sent one."""
    names = cookie_names_of(request)
    return None if names is None else request.cookies.get(names.session)


def same_origin(request: Request) -> bool:
    """Whether the request's ``Origin`` (when it sends one) is this site's."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    base = urlsplit(base_of(request))
    return origin == f"{base.scheme}://{base.netloc}"


def check_csrf(request: Request, signin: SignInService, session_id: str) -> None:
    """Raise ``CsrfFailed`` unless a state-changing cookie request proves it comes from our page."""
    if request.method not in UNSAFE_METHODS:
        return
    if not same_origin(request) or not csrf_matches(
        signin.keys.csrf, session_id, request.headers.get(CSRF_HEADER)
    ):
        raise CsrfFailed


async def principal_of(request: Request) -> Principal | None:
    """The signed-in user this request acts for, or ``None`` (anonymous). Resolved once per
    request. Raises ``InvalidApiToken`` for a bearer API token that is not live, and
    ``CsrfFailed`` for a cookie request that changes state without the session's CSRF token
    or from another origin."""
    state = request.scope.setdefault("state", {})
    known = state.get(_RESOLVED, _UNSET)
    if known is not _UNSET:
        resolved: Principal | None = known
        return resolved
    principal = None
    if carries_credentials(request.scope):
        authorization = request.headers.get("authorization")
        if authorization is not None:
            token = _api_token(authorization)
            if token is not None:
                tokens: TokenService = request.app.state.tokens
                principal = await tokens.authenticate(token)
            # Other bearers (a secret's access or manage token) are the secret routes' own
            # business, and never make the cookie count.
        else:
            principal = await _session_principal(request)
    state[_RESOLVED] = principal
    return principal


async def recipient_of(request: Request) -> Principal | None:
    """Who a reveal of a secret bound to recipients acts for: an API token in
    ``X-Burnlink-Token`` (``consume`` has the access token in ``Authorization``) or as the
    bearer, else the session cookie (with its CSRF check); ``None`` when anonymous. A token
    that is not live is ``InvalidApiToken``. Resolved once per request."""
    state = request.scope.setdefault("state", {})
    known = state.get(_RESOLVED, _UNSET)
    if known is not _UNSET:
        resolved: Principal | None = known
        return resolved
    header = request.headers.get(RECIPIENT_TOKEN_HEADER)
    authorization = request.headers.get("authorization")
    principal: Principal | None
    if header is not None:
        tokens: TokenService = request.app.state.tokens
        principal = await tokens.authenticate(header.strip())
    elif authorization is not None and _api_token(authorization) is not None:
        return await principal_of(request)
    else:
        principal = await _session_principal(request)
    state[_RESOLVED] = principal
    return principal


async def require_principal(request: Request) -> Principal:
    """The signed-in user; ``LoginRequired`` (answered with where to sign in) when anonymous."""
    principal = await principal_of(request)
    if principal is None:
        raise LoginRequired
    return principal


def require_scope(principal: Principal, scope: str) -> None:
    """Return when ``principal`` may do what ``scope`` names; else ``InsufficientScope``."""
    if not principal.may(scope):
        raise InsufficientScope(scope)


def _api_token(authorization: str) -> str | None:
    if authorization[: len(_BEARER)].lower() != _BEARER:
        return None
    credential = authorization[len(_BEARER) :].strip()
    return credential if is_api_token(credential) else None


async def _session_principal(request: Request) -> Principal | None:
    signin = signin_of(request)
    if signin is None:
        return None
    session_id = session_cookie(request)
    if session_id is None:
        return None
    check_csrf(request, signin, session_id)
    return await signin.resolve(session_id)
