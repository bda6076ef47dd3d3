"""Routes for personal API tokens: ``/api/v1/me/tokens`` for the signed-in user, and
``DELETE /api/v1/admin/tokens/{id}`` for the operator (docs/api.md § API tokens).

A token is made only from a browser session whose sign-in is fresh (``service.tokens``); it
is listed and revoked by its user with a session or any of their tokens; the admin token
(``BURNLINK_ADMIN_TOKEN``, as ``GET /api/v1/audit`` takes it) revokes anyone's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from burnlink.identity.principal import Principal
from burnlink.service import SecretService
from burnlink.service.tokens import TokenService
from burnlink.web.admin_api import ADMIN_401, ADMIN_403, admin_actor, require_admin
from burnlink.web.api import client_of
from burnlink.web.errors import error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.principal import require_principal
from burnlink.web.token_schemas import (
    CreatedTokenResponse,
    CreateTokenRequest,
    TokenBody,
    TokenList,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["tokens"], route_class=StrictJSONRoute)

SignedIn = Annotated[Principal, Depends(require_principal)]

_SIGNED_IN_401 = (
    "`login_required`: no session or API token (`login_url` says where to sign in);"
    " `invalid_token`: the bearer API token is unknown, revoked, expired or malformed."
)


async def get_tokens(request: Request) -> TokenService:
    """The app's one ``TokenService``."""
    tokens: TokenService = request.app.state.tokens
    return tokens


Tokens = Annotated[TokenService, Depends(get_tokens)]


@router.post(
    "/me/tokens",
    status_code=201,
    response_model=CreatedTokenResponse,
    responses=error_responses(
        400,
        401,
        403,
        413,
        415,
        422,
        503,
        notes={
            401: _SIGNED_IN_401 + " `fresh_login_required`: sign in again first (`login_url`).",
            403: "`not_permitted`: tokens are made from a browser session, not with a token.",
        },
    ),
)
async def create_token(
    body: CreateTokenRequest, principal: SignedIn, tokens: Tokens, request: Request
) -> CreatedTokenResponse:
    """Make a personal API token for the signed-in user; the token is in this answer only."""
    made = await tokens.create(
        principal,
        name=body.name,
        scopes=list(body.scopes),
        expires_in_days=body.expires_in_days,
        client=client_of(request),
    )
    listed = TokenBody.of(made.record, made.record.created_at)
    return CreatedTokenResponse(**listed.model_dump(), token=made.token)


@router.get(
    "/me/tokens",
    response_model=TokenList,
    responses=error_responses(401, 503, notes={401: _SIGNED_IN_401}),
)
async def list_tokens(principal: SignedIn, tokens: Tokens) -> TokenList:
    """The signed-in user's tokens, newest first, with when each was last used."""
    now = tokens.clock.now()
    return TokenList(
        tokens=[TokenBody.of(record, now) for record in await tokens.list_tokens(principal)]
    )


@router.delete(
    "/me/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(
        400,
        401,
        404,
        413,
        415,
        503,
        notes={
            401: _SIGNED_IN_401,
            404: "`not_found`: no live token of the user's has this id.",
        },
    ),
)
async def revoke_token(
    token_id: str, principal: SignedIn, tokens: Tokens, request: Request
) -> Response:
    """Revoke one of the signed-in user's tokens; it stops working at once, on every instance."""
    await tokens.revoke(principal, token_id, client=client_of(request))
    return Response(status_code=204)


@router.delete(
    "/admin/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    tags=["admin"],
    responses=error_responses(
        400,
        401,
        403,
        404,
        413,
        415,
        429,
        503,
        notes={
            401: ADMIN_401,
            403: ADMIN_403,
            404: "`not_found`: no live token has this id.",
            429: "`rate_limited`: too many wrong admin tokens from this client.",
        },
    ),
)
async def admin_revoke_token(
    token_id: str,
    _: Annotated[SecretService, Depends(require_admin)],
    tokens: Tokens,
    request: Request,
) -> Response:
    """Revoke anyone's API token (admin token as bearer, or an administrator's session with
    its CSRF token); audited with the administrator as actor when signed in."""
    await tokens.revoke_any(token_id, client=client_of(request), actor=admin_actor(request))
    return Response(status_code=204)
