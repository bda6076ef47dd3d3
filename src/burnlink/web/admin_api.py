"""The admin API (``/api/v1/admin/...``) and who may call it (docs/admin.md, docs/api.md).

Every admin route, ``GET /api/v1/audit`` and ``DELETE /api/v1/admin/tokens/{id}`` among them,
takes either ``Authorization: Bearer <BURNLINK_ADMIN_TOKEN>`` (for scripts) or the session
cookie of a member of ``BURNLINK_ADMIN_GROUPS`` with a fresh second-factor sign-in (for the
console page; state-changing calls also carry its CSRF token). ``require_admin`` decides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from burnlink.audit.events import AuditEventType, Outcome
from burnlink.audit.export import MEDIA_TYPES
from burnlink.identity.principal import Principal
from burnlink.service import SecretService
from burnlink.service.admin import AdminConsole, AuditQuery
from burnlink.web.api import client_of
from burnlink.web.errors import error_responses
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.principal import principal_of, session_cookie
from burnlink.web.schemas import Instant
from burnlink.web.token_schemas import TokenBody

__all__ = [
    "ADMIN_401",
    "ADMIN_403",
    "ADMIN_429",
    "AdminAccess",
    "Filters",
    "Search",
    "admin_actor",
    "audit_query",
    "require_admin",
    "router",
]

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=StrictJSONRoute)
# Its own scheme name: under the default ("HTTPBearer") it would replace the description of
# the secrets' access and manage tokens in the OpenAPI document.
_admin = HTTPBearer(auto_error=False, scheme_name="AdminToken", description="BURNLINK_ADMIN_TOKEN")

ADMIN_401 = (
    "`unauthorized`: no admin token, or the wrong one (or none is configured), and no session;"
    " `login_required` / `fresh_login_required`: a session whose sign-in is missing or older"
    " than `BURNLINK_ADMIN_MAX_AGE` (`login_url` signs in again and comes back to `/admin`)."
)
ADMIN_403 = (
    "`not_permitted`: the signed-in user is not in `BURNLINK_ADMIN_GROUPS` (or an API token"
    " was sent); `mfa_required`: the sign-in had no second factor; `csrf_failed`."
)
ADMIN_429 = "`rate_limited`: too many wrong admin tokens from this client."
_ACCESS = "burnlink.admin"
_PRINCIPAL = "burnlink.admin_principal"


class AdminAccess(BaseModel):
    """Who a request to the admin API acts as."""

    via: Literal["admin_token", "session"]
    subject: str | None = None
    email: str | None = None
    signed_in_at: Instant | None = None
    fresh_until: Instant | None = Field(
        default=None, description="When the console will ask for a new sign-in."
    )


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin)],
) -> SecretService:
    """The service, for a request from an administrator (see the module docstring). A
    request without a bearer is judged by the console's rule (``AdminConsole.admit``) when it
    carries a session cookie or the console is on (then an anonymous one is asked to sign
    in); any other by the admin token (``SecretService.check_admin``: wrong ones are counted
    and audited, ``RateLimited`` past the limit)."""
    await admin_access(request, credentials)
    service: SecretService = request.app.state.service
    return service


async def admin_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin)],
) -> AdminAccess:
    """``require_admin``'s decision, with who was let in."""
    state = request.scope.setdefault("state", {})
    known = state.get(_ACCESS)
    if isinstance(known, AdminAccess):
        return known
    service: SecretService = request.app.state.service
    console: AdminConsole = request.app.state.admin
    client = client_of(request)
    if credentials is None and (console.enabled or session_cookie(request) is not None):
        principal = await console.admit(await principal_of(request), client)
        access = AdminAccess(
            via="session",
            subject=principal.subject,
            email=principal.email,
            signed_in_at=principal.auth_time,
            fresh_until=console.fresh_until(principal),
        )
        state[_PRINCIPAL] = principal
    else:
        given = credentials.credentials if credentials is not None else ""
        await service.check_admin(given, client)
        access = AdminAccess(via="admin_token")
    state[_ACCESS] = access
    return access


def admin_actor(request: Request) -> Principal | None:
    """The administrator ``admin_access`` let in by their session, as an audit actor;
    ``None`` for the admin token."""
    principal = request.scope.get("state", {}).get(_PRINCIPAL)
    return principal if isinstance(principal, Principal) else None


Admin = Annotated[AdminAccess, Depends(admin_access)]


def console_of(request: Request) -> AdminConsole:
    """The app's one ``AdminConsole``."""
    console: AdminConsole = request.app.state.admin
    return console


Console = Annotated[AdminConsole, Depends(console_of)]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Filters(BaseModel):
    """The audit filters a search and an export share (query parameters)."""

    since: datetime | None = Field(default=None, description="At or after (ISO 8601; UTC).")
    until: datetime | None = Field(default=None, description="Before this time.")
    type: list[AuditEventType] | None = Field(default=None, description="These types only.")
    actor: str | None = Field(
        default=None, max_length=255, description="A signed-in actor's email or subject."
    )
    secret_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="A secret's id (events name it by hash; hashed here).",
    )
    client_ip: str | None = Field(
        default=None, max_length=64, description="A client address or a CIDR network."
    )
    outcome: Outcome | None = None
    team: str | None = Field(
        default=None, max_length=64, description="A team: the events of its members' secrets."
    )


def audit_query(filters: Annotated[Filters, Query()]) -> AuditQuery:
    """The search the query parameters describe (``InvalidInput`` for a bad address or an
    empty period)."""
    return AuditQuery(
        since=_utc(filters.since),
        until=_utc(filters.until),
        types=filters.type,
        actor=filters.actor,
        secret_id=filters.secret_id,
        client_ip=filters.client_ip,
        outcome=filters.outcome,
        team=filters.team,
    )


Search = Annotated[AuditQuery, Depends(audit_query)]

_NOTES = {
    401: ADMIN_401,
    403: ADMIN_403,
    429: ADMIN_429,
    422: "A query parameter is invalid (`invalid_field`; `field` names it).",
    503: "The audit log is not configured, did not answer, or does not verify"
    " (`audit_unavailable`), or the store did not answer (`store_unavailable`).",
}
_ADMIN_ERRORS = error_responses(401, 403, 429, 503, notes=_NOTES)
_READ_ERRORS = error_responses(401, 403, 422, 429, 503, notes=_NOTES)


@router.get("/session", response_model=AdminAccess, responses=_ADMIN_ERRORS)
async def admin_session(access: Admin) -> AdminAccess:
    """Who the console acts as, and until when its sign-in serves (the page asks first)."""
    return access


class Bucket(BaseModel):
    """Events in one bucket of time, by kind (docs/admin.md § Activity)."""

    start: Instant
    created: int
    viewed: int
    expired: int
    burned: int
    denied: int
    alerts: int


class Activity(BaseModel):
    """Activity over a period, in buckets of an hour or a day, oldest first."""

    since: Instant
    until: Instant
    bucket: Literal["hour", "day"]
    buckets: list[Bucket]


@router.get("/activity", response_model=Activity, responses=_READ_ERRORS)
async def admin_activity(
    _: Admin,
    console: Console,
    since: Annotated[datetime | None, Query(description="Start (default: 30 days ago).")] = None,
    until: Annotated[datetime | None, Query(description="End (default: now).")] = None,
    bucket: Annotated[Literal["hour", "day"], Query()] = "day",
    team: Annotated[
        str | None, Query(max_length=64, description="Only the secrets of this team's members.")
    ] = None,
) -> Activity:
    """Created, viewed, expired, burned, denied and alerts per hour or day, from the audit
    log (at most 1,000 buckets)."""
    start, end, buckets = await console.activity(
        since=_utc(since), until=_utc(until), bucket=bucket, team=team
    )
    return Activity(
        since=start,
        until=end,
        bucket=bucket,
        buckets=[Bucket(start=moment, **counts) for moment, counts in buckets],
    )


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The matching entries, oldest first, as a download.",
            "content": {"application/jsonl": {}, "text/csv": {}},
        },
        **_READ_ERRORS,
    },
)
async def admin_audit_export(
    _: Admin,
    console: Console,
    query: Search,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "csv",
) -> StreamingResponse:
    """Every entry the filters match, as CSV (for reading) or JSON Lines (each line carries
    its MACs), streamed. The log is checked and the first entry read before the answer
    starts, so a log that is down or does not verify is refused (503) before anything is
    sent."""
    lines = await console.export(query, format)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        lines,
        media_type=MEDIA_TYPES[format],
        headers={"content-disposition": f'attachment; filename="audit-{stamp}.{format}"'},
    )


class AdminToken(TokenBody):
    """Any user's API token, as the console lists it: never the token itself."""

    subject: str = Field(description="Its user (the provider's ``sub``).")
    email: str | None


class AdminTokenList(BaseModel):
    """Every user's API tokens, newest first (at most 1,000)."""

    tokens: list[AdminToken]


@router.get("/tokens", response_model=AdminTokenList, responses=_ADMIN_ERRORS)
async def admin_tokens(_: Admin, console: Console) -> AdminTokenList:
    """Every user's API tokens: live ones, and revoked or expired ones for a while."""
    now = console.clock.now()
    return AdminTokenList(
        tokens=[
            AdminToken(
                **TokenBody.of(record, now).model_dump(),
                subject=record.subject,
                email=record.email,
            )
            for record in await console.tokens()
        ]
    )


class Policy(BaseModel):
    """The policy in force (docs/admin.md § Policy)."""

    source: Literal["configuration"] = Field(
        description="Where it comes from; the console shows it read-only."
    )
    sections: dict[str, dict[str, Any]]


@router.get("/policy", response_model=Policy, responses=_ADMIN_ERRORS)
async def admin_policy(_: Admin, console: Console) -> Policy:
    """The rules in force, as configured (never a secret setting's value)."""
    return Policy(source="configuration", sections=console.policy())
