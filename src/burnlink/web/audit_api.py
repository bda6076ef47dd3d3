"""``GET /api/v1/audit``: the audit log for the operator, page by page (docs/api.md).

It needs ``Authorization: Bearer <BURNLINK_ADMIN_TOKEN>``; without the setting the route
answers every request with ``401 unauthorized``, as it does a wrong token. Wrong tokens are
audited (``admin.denied``) and counted per client: past ``BURNLINK_RATE_LIMIT_ADMIN`` the
answer is ``429 rate_limited``, whatever the token, until the window ends. Pages are keyed by
``seq`` (``after``), so entries appended while a client pages through are never skipped or
repeated. Each entry is the JSON Lines export's object, so pages can be verified with the key. Only
entries between the authentic state row's base and head are served, each checked against its
MAC; a state or entry that fails answers ``503 audit_unavailable`` (``burnlink audit verify``
says what is wrong).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from burnlink.audit.events import AuditEventType
from burnlink.audit.export import entry_to_dict
from burnlink.errors import AuditUnavailable
from burnlink.service import SecretService
from burnlink.web.api import client_of
from burnlink.web.errors import error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.schemas import AuditEntryBody, AuditPage

__all__ = ["MAX_PAGE", "router"]

MAX_PAGE = 1000

router = APIRouter(prefix="/api/v1", tags=["audit"], route_class=StrictJSONRoute)
# Its own scheme name: under the default ("HTTPBearer") it would replace the description of
# the secrets' access and manage tokens in the OpenAPI document.
_admin = HTTPBearer(auto_error=False, scheme_name="AdminToken", description="BURNLINK_ADMIN_TOKEN")


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin)],
) -> SecretService:
    """The service, for a request carrying the admin token; else ``AdminRequired`` (or
    ``RateLimited`` after too many wrong tokens from the client)."""
    service: SecretService = request.app.state.service
    given = credentials.credentials if credentials is not None else ""
    await service.check_admin(given, client_of(request))
    return service


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.get(
    "/audit",
    response_model=AuditPage,
    responses=error_responses(
        401,
        422,
        429,
        503,
        notes={
            401: "`unauthorized`: no admin token, or the wrong one (or none is configured)."
            " `WWW-Authenticate` is set.",
            429: "`rate_limited`: too many wrong admin tokens from this client"
            " (`BURNLINK_RATE_LIMIT_ADMIN`). Retry after `retry_after` seconds (also"
            " `Retry-After`).",
            422: "A query parameter is invalid or out of range (`invalid_field`; `field` names"
            " it).",
            503: "The audit log is not configured or did not answer (`audit_unavailable`,"
            " `store_unavailable`).",
        },
    ),
)
async def audit_log(
    service: Annotated[SecretService, Depends(require_admin)],
    since: Annotated[
        datetime | None, Query(description="Entries at or after this time (ISO 8601; UTC).")
    ] = None,
    until: Annotated[datetime | None, Query(description="Entries before this time.")] = None,
    type: Annotated[
        list[AuditEventType] | None, Query(description="Only these types (repeatable).")
    ] = None,
    after: Annotated[int, Query(ge=0, description="Entries after this seq (paging).")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditPage:
    """Audit entries in ``seq`` order, filtered by time and type (admin token as bearer)."""
    audit = service.audit_log
    if audit is None:
        raise AuditUnavailable("The audit log is not configured.")
    # Events recorded but not sealed yet are sealed first, so the page shows every action
    # that took effect before this request.
    await service.seal_pending()
    # Only entries inside the chain the state row vouches for: a row forged past the head, or
    # one left behind the base, is not part of the log, and an entry or state that fails its
    # MAC stops the page rather than be served as if it were the log's.
    state = (await audit.bounds()).state
    if state is None or not audit.is_authentic(state):
        raise AuditUnavailable(
            "The audit log's state row is missing or does not verify; run `burnlink audit verify`."
        )
    entries = []
    async for entry in audit.iter_entries(
        since=_utc(since),
        until=_utc(until),
        types=type,
        after_seq=max(after, state.base.seq),
        through_seq=state.head.seq,
        limit=limit + 1,
    ):
        if not audit.is_authentic(entry):
            raise AuditUnavailable(
                f"Audit entry {entry.seq} does not verify; run `burnlink audit verify`."
            )
        entries.append(entry)
    page = entries[:limit]
    return AuditPage(
        entries=[AuditEntryBody(**entry_to_dict(entry)) for entry in page],
        next_after=page[-1].seq if len(entries) > limit else None,
    )
