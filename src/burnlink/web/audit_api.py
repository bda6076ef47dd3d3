"""``GET /api/v1/audit``: the audit log for the operator, page by page (docs/api.md).

It needs ``Authorization: Bearer <BURNLINK_ADMIN_TOKEN>``, or an administrator's console
session (``web.admin_api``); without either the route answers ``401 unauthorized``. Wrong tokens are
audited (``admin.denied``) and counted per client: past ``BURNLINK_RATE_LIMIT_ADMIN`` the
answer is ``429 rate_limited``, whatever the token, until the window ends. Pages are keyed by
``seq`` (``after``), so entries appended while a client pages through are never skipped or
repeated. Each entry is the JSON Lines export's object, so pages can be verified with the key. Only
entries between the authentic state row's base and head are served, each checked against its
MAC; a state or entry that fails answers ``503 audit_unavailable`` (``burnlink audit verify``
says what is wrong).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from burnlink.audit.export import entry_to_dict
from burnlink.service.admin import AdminConsole
from burnlink.web.admin_api import ADMIN_401, ADMIN_403, ADMIN_429, Search, require_admin
from burnlink.web.errors import error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.schemas import AuditEntryBody, AuditPage

__all__ = ["MAX_PAGE", "router"]

MAX_PAGE = 1000

router = APIRouter(prefix="/api/v1", tags=["audit"], route_class=StrictJSONRoute)


@router.get(
    "/audit",
    response_model=AuditPage,
    dependencies=[Depends(require_admin)],
    responses=error_responses(
        401,
        403,
        422,
        429,
        503,
        notes={
            401: ADMIN_401 + " `WWW-Authenticate` is set for `unauthorized`.",
            403: ADMIN_403,
            429: ADMIN_429 + " Retry after `retry_after` seconds (also `Retry-After`).",
            422: "A query parameter is invalid or out of range (`invalid_field`; `field` names"
            " it).",
            503: "The audit log is not configured, did not answer, or does not verify"
            " (`audit_unavailable`, `store_unavailable`).",
        },
    ),
)
async def audit_log(
    request: Request,
    query: Search,
    after: Annotated[int, Query(ge=0, description="Entries after this seq (paging).")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditPage:
    """Audit entries in ``seq`` order, filtered by time, type, actor, secret, client address
    and outcome (admin token as bearer, or an administrator's console session)."""
    console: AdminConsole = request.app.state.admin
    page, next_after = await console.search(query, after=after, limit=limit)
    return AuditPage(
        entries=[AuditEntryBody(**entry_to_dict(entry)) for entry in page],
        next_after=next_after,
    )
