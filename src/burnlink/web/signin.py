"""Sign-in routes (docs/identity.md), mounted only when ``BURNLINK_OIDC_ISSUER`` is set.

``GET /auth/login`` starts a sign-in at the provider; ``GET /auth/callback`` completes it and
sets the session cookie; ``POST /auth/logout`` ends the session here (and sends the browser to
the provider's sign-out, when it has one); ``GET /api/v1/me`` says who is signed in.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import RedirectResponse, Response

from burnlink.errors import LoginRequired, RateLimited, SignInRefused
from burnlink.identity.sessions import CookieNames
from burnlink.identity.transaction import LOGIN_SECONDS, safe_next
from burnlink.service.signin import SignInService
from burnlink.web.api import client_of
from burnlink.web.base_url import base_of
from burnlink.web.errors import NO_STORE, error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.principal import (
    cookie_names_of,
    principal_of,
    session_cookie,
    signin_of,
)
from burnlink.web.schemas import MeResponse

__all__ = ["api_router", "router"]

router = APIRouter(include_in_schema=False, route_class=StrictJSONRoute)
api_router = APIRouter(prefix="/api/v1", tags=["identity"], route_class=StrictJSONRoute)

CALLBACK: Final = "/auth/callback"
MAX_AGE_LIMIT: Final = 86400
_STATUS: Final = {"mfa_required": 403, "provider_unavailable": 503, "insecure_origin": 400}


def _service(request: Request) -> SignInService:
    service = signin_of(request)
    if service is None:  # pragma: no cover - the router is mounted only with sign-in
        raise LoginRequired
    return service


def _names(request: Request) -> CookieNames:
    names = cookie_names_of(request)
    if names is None:
        raise SignInRefused(
            "insecure_origin",
            "Sign-in needs https (or http on this machine's loopback address): set"
            " BURNLINK_BASE_URL to the https address of this server.",
        )
    return names


def _refused_page(
    request: Request, exc: SignInRefused | RateLimited, names: CookieNames | None
) -> Response:
    from burnlink.web.pages import render_page

    if isinstance(exc, RateLimited):
        status, reason = 429, "rate_limited"
    else:
        status, reason = _STATUS.get(exc.reason, 400), exc.reason
    response = render_page(request, "signin", status_code=status, message=str(exc), reason=reason)
    response.headers.update(NO_STORE)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    if names is not None:
        response.delete_cookie(
            names.login, path="/", secure=names.secure, httponly=True, samesite="lax"
        )
    return response


@router.get("/auth/login")
async def login(request: Request) -> Response:
    """Start a sign-in; ``next`` (a path on this site) is where it ends, ``max_age`` (seconds)
    asks the provider for a sign-in at most that old."""
    service = _service(request)
    names: CookieNames | None = None
    try:
        names = _names(request)
        max_age = _max_age(request.query_params.get("max_age"))
        started = await service.begin(
            next=safe_next(request.query_params.get("next")),
            max_age=max_age,
            redirect_uri=base_of(request) + CALLBACK,
        )
    except SignInRefused as exc:
        return _refused_page(request, exc, names)
    response = RedirectResponse(started.url, status_code=302, headers=NO_STORE)
    response.set_cookie(
        names.login,
        started.transaction,
        max_age=LOGIN_SECONDS,
        path="/",
        secure=names.secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(CALLBACK)
async def callback(request: Request) -> Response:
    """Complete a sign-in: check it, start the session, go to where the sign-in began."""
    service = _service(request)
    names: CookieNames | None = None
    try:
        names = _names(request)
        started = await service.complete(
            dict(request.query_params),
            transaction=request.cookies.get(names.login),
            redirect_uri=base_of(request) + CALLBACK,
            client=client_of(request),
        )
    except (SignInRefused, RateLimited) as exc:
        return _refused_page(request, exc, names)
    # A session this browser already had ends: one sign-in, one session.
    await service.end(request.cookies.get(names.session), None, client=client_of(request))
    response = RedirectResponse(base_of(request) + started.next, status_code=303, headers=NO_STORE)
    response.delete_cookie(
        names.login, path="/", secure=names.secure, httponly=True, samesite="lax"
    )
    response.set_cookie(
        names.session,
        started.session_id,
        max_age=service.settings.session_max_age,
        path="/",
        secure=names.secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/auth/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-protected), clear the cookie, and go to the provider's sign-out
    when it has one, else home. ``Accept: application/json`` gets ``{"logout_url": ...}``
    instead of a redirect (for the page's script)."""
    service = _service(request)
    principal = await principal_of(request)  # checks CSRF for a cookie request
    await service.end(session_cookie(request), principal, client=client_of(request))
    home = base_of(request) + "/"
    target = await service.end_session_url(post_logout_redirect_uri=home) or home
    response: Response
    if "application/json" in request.headers.get("accept", ""):
        response = JSONResponse({"logout_url": target}, headers=NO_STORE)
    else:
        response = RedirectResponse(target, status_code=303, headers=NO_STORE)
    names = cookie_names_of(request)
    if names is not None:
        response.delete_cookie(
            names.session, path="/", secure=names.secure, httponly=True, samesite="lax"
        )
    return response


@api_router.get(
    "/me",
    response_model=MeResponse,
    responses=error_responses(
        401,
        503,
        notes={401: "`login_required`: no live session or token; `login_url` is where to sign in."},
    ),
)
async def me(request: Request) -> MeResponse:
    """Who is signed in, with the session's CSRF token."""
    service = _service(request)
    principal = await principal_of(request)
    if principal is None:
        raise LoginRequired
    session_id = session_cookie(request) if principal.via == "session" else None
    return MeResponse(
        subject=principal.subject,
        email=principal.email,
        groups=list(principal.groups),
        mfa=principal.mfa,
        auth_time=principal.auth_time,
        csrf_token=None if session_id is None else service.csrf_token(session_id),
        via=principal.via,
        token_id=principal.token_id,
    )


def _max_age(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 6:
        return None
    return min(int(value), MAX_AGE_LIMIT)
