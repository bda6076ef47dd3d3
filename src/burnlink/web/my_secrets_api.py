""" "My secrets": ``/api/v1/me/secrets``, the secrets a signed-in sender created, their
receipts, and burning one or many, for their owner only (docs/api.md § My secrets).

A session may do all of it; an API token needs ``secrets:read-receipts`` to list and read,
``secrets:burn`` to burn. Another user's secret, an unknown id and a malformed one are all the
same ``404 not_found``. No manage link is needed, though it keeps working.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from burnlink.errors import SecretUnavailable
from burnlink.identity.principal import Principal
from burnlink.service.secrets import Receipt
from burnlink.web.api import Service, client_of, receipt_body
from burnlink.web.base_url import public_base
from burnlink.web.errors import error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.my_secrets_schemas import BurnMany, BurnManyResult, MySecret, MySecrets
from burnlink.web.principal import require_principal, require_scope
from burnlink.web.schemas import ReceiptResponse

__all__ = ["MAX_LISTED", "router"]

MAX_LISTED = 500
READ = "secrets:read-receipts"
BURN = "secrets:burn"

router = APIRouter(prefix="/api/v1", tags=["my secrets"], route_class=StrictJSONRoute)

SignedIn = Annotated[Principal, Depends(require_principal)]

_401 = (
    "`login_required`: no session or API token (`login_url` says where to sign in);"
    " `invalid_token`: the bearer API token is unknown, revoked, expired or malformed."
)
_403 = "`insufficient_scope`: the API token lacks `{scope}` (`scope` names it)."
_404 = "`not_found`: the user created no secret with this id (or its receipt is gone)."


def _notes(scope: str) -> dict[int, str]:
    """What a 401, 403 and 404 mean on a route that needs ``scope`` of an API token."""
    return {401: _401, 403: _403.format(scope=scope), 404: _404}


def _listed(receipt: Receipt) -> MySecret:
    last = receipt.events[-1] if receipt.events else None
    return MySecret.of(
        receipt,
        label=receipt.record.label,
        last_event=None if last is None else last.kind.value,
        last_event_at=None if last is None else last.at,
        receipt_url=f"/api/v1/me/secrets/{receipt.record.secret_id}",
    )


@router.get(
    "/me/secrets",
    response_model=MySecrets,
    responses=error_responses(401, 403, 422, 503, notes=_notes(READ)),
)
async def my_secrets(
    principal: SignedIn,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
) -> MySecrets:
    """The secrets the signed-in user created, newest first: live ones, and ended ones while
    their receipts are kept."""
    require_scope(principal, READ)
    receipts = await service.owned_receipts(principal, limit=limit)
    return MySecrets(secrets=[_listed(receipt) for receipt in receipts])


@router.get(
    "/me/secrets/{secret_id}",
    response_model=ReceiptResponse,
    responses=error_responses(401, 403, 404, 503, notes=_notes(READ)),
)
async def my_secret_receipt(
    secret_id: str, principal: SignedIn, request: Request, service: Service
) -> ReceiptResponse:
    """The receipt of one of the user's secrets, as its manage link would show it."""
    require_scope(principal, READ)
    receipt = await service.owned_receipt(
        principal, secret_id, issuer=public_base(request, service)
    )
    return receipt_body(receipt, service)


@router.delete(
    "/me/secrets/{secret_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(400, 401, 403, 404, 413, 415, 503, notes=_notes(BURN)),
)
async def burn_my_secret(
    secret_id: str, principal: SignedIn, request: Request, service: Service
) -> Response:
    """Burn one of the user's secrets now; the audit names them. An ended one is no error."""
    require_scope(principal, BURN)
    await service.burn_owned(principal, secret_id, client=client_of(request))
    return Response(status_code=204)


@router.post(
    "/me/secrets/burn",
    response_model=BurnManyResult,
    responses=error_responses(400, 401, 403, 413, 415, 422, 503, notes=_notes(BURN)),
)
async def burn_my_secrets(
    body: BurnMany, principal: SignedIn, request: Request, service: Service
) -> BurnManyResult:
    """Burn several of the user's secrets; says which ids were burned (or had already ended)
    and which are not the user's."""
    require_scope(principal, BURN)
    client = client_of(request)
    burned, not_found = [], []
    for secret_id in dict.fromkeys(body.ids):
        try:
            await service.burn_owned(principal, secret_id, client=client)
        except SecretUnavailable:
            not_found.append(secret_id)
        else:
            burned.append(secret_id)
    return BurnManyResult(burned=burned, not_found=not_found)
