"""Personal API tokens: made by a signed-in user, listed, revoked, and turned back into the
``Principal`` a bearer request acts for (docs/identity.md § API tokens).

A token is shown once, when it is made; the store keeps only its digest
(``store.identity.TokenRecord``). A bearer that is unknown, revoked, expired or has a wrong
checksum gets the one ``InvalidApiToken`` answer; a malformed one never reaches the store.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from burnlink.audit.events import AuditEventType
from burnlink.clock import Clock
from burnlink.errors import (
    DuplicateId,
    FreshLoginRequired,
    InvalidApiToken,
    InvalidInput,
    NotPermitted,
    TokenNotFound,
)
from burnlink.identity.principal import SCOPES, Principal
from burnlink.identity.tokens import is_token_id, new_api_token, new_token_id, parse_token
from burnlink.ids import token_digest
from burnlink.models import ClientInfo
from burnlink.service.reporting import Reporter
from burnlink.store.identity import ApiTokens, TokenRecord

__all__ = [
    "DEFAULT_DAYS",
    "FRESH_SIGN_IN_SECONDS",
    "MAX_DAYS",
    "MAX_NAME_CHARS",
    "NewToken",
    "TokenService",
    "require_fresh_sign_in",
]

MAX_NAME_CHARS = 64
DEFAULT_DAYS = 90
MAX_DAYS = 365
FRESH_SIGN_IN_SECONDS = 300
"""How recent a session's sign-in must be to make a token (``BURNLINK_OIDC_MAX_AGE``'s
default); the sign-in module's own freshness check replaces this one when it lands."""
_TRIES = 3


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: its record, and the token itself, which is never shown again."""

    record: TokenRecord
    token: str = field(repr=False)


def require_fresh_sign_in(
    principal: Principal, now: datetime, *, max_age: int = FRESH_SIGN_IN_SECONDS, next_path: str
) -> None:
    """Return when ``principal`` is a session whose user signed in at most ``max_age`` seconds
    ago; a token is ``NotPermitted`` (tokens do not make tokens), a stale sign-in
    ``FreshLoginRequired``."""
    if principal.via != "session":
        raise NotPermitted("API tokens are made from a signed-in browser session, not a token.")
    signed_in = principal.auth_time
    if signed_in is None or now - signed_in > timedelta(seconds=max_age):
        raise FreshLoginRequired(max_age=max_age, next_path=next_path)


def check_name(name: str) -> str:
    """The token's name, trimmed; ``InvalidInput`` unless 1-64 printable characters."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise InvalidInput("name", f"must be 1 to {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise InvalidInput("name", "must not contain control or format characters")
    return name


def check_scopes(scopes: list[str]) -> tuple[str, ...]:
    """The scopes in ``SCOPES`` order; ``InvalidInput`` when empty or naming an unknown one."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInput("scopes", f"unknown scope; use {', '.join(SCOPES)}")
    if not scopes:
        raise InvalidInput("scopes", "must name at least one scope")
    return tuple(scope for scope in SCOPES if scope in scopes)


class TokenService:
    """Make, list, revoke and check personal API tokens."""

    def __init__(
        self,
        store: ApiTokens,
        clock: Clock,
        *,
        fresh_seconds: int = FRESH_SIGN_IN_SECONDS,
        reporter: Reporter | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.fresh_seconds = fresh_seconds
        self.reporter = reporter
        """Where making and revoking a token is audited (``token.created``, ``token.revoked``)."""

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        scopes: list[str],
        expires_in_days: int | None = None,
        client: ClientInfo | None = None,
    ) -> NewToken:
        """A new token for ``principal``'s user, who must have signed in freshly in a browser
        session (``require_fresh_sign_in``). ``InvalidInput`` names a bad name, scope set or
        expiry (1 to 365 days, default 90)."""
        now = self.clock.now()
        require_fresh_sign_in(principal, now, max_age=self.fresh_seconds, next_path="/me")
        days = DEFAULT_DAYS if expires_in_days is None else expires_in_days
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInput("expires_in_days", f"must be from 1 to {MAX_DAYS}")
        return await self.issue(
            principal,
            name=check_name(name),
            scopes=check_scopes(scopes),
            days=days,
            client=client,
            now=now,
        )

    async def issue(
        self,
        principal: Principal,
        *,
        name: str,
        scopes: tuple[str, ...],
        days: int,
        client: ClientInfo | None,
        now: datetime,
    ) -> NewToken:
        """Make and audit a token for ``principal``'s user, with checked ``name`` and
        ``scopes``, without asking for a fresh sign-in: for ``create`` once it has, and for a
        caller that has just verified a sign-in itself (the CLI's device sign-in)."""
        for _ in range(_TRIES):
            token = new_api_token()
            record = TokenRecord(
                token_id=new_token_id(),
                digest=token_digest(token.encode("ascii")),
                subject=principal.subject,
                email=principal.email,
                groups=principal.groups,
                name=name,
                scopes=scopes,
                created_at=now,
                expires_at=now + timedelta(days=days),
            )
            try:
                await self.store.put_token(record)
            except DuplicateId:  # about 256 random bits: in practice never
                continue
            await self._audit(
                AuditEventType.TOKEN_CREATED,
                now,
                client,
                actor=principal,
                credential_id=record.token_id,
                name=record.name,
                scopes=" ".join(record.scopes),
                expires_at=record.expires_at.isoformat(),
            )
            return NewToken(record, token)
        raise DuplicateId("could not allocate a fresh token")

    async def list_tokens(self, principal: Principal) -> list[TokenRecord]:
        """``principal``'s user's tokens, newest first, ended ones while they are kept."""
        return await self.store.list_tokens(principal.subject, now=self.clock.now())

    async def revoke(
        self, principal: Principal, token_id: str, *, client: ClientInfo | None = None
    ) -> None:
        """Revoke one of the user's own live tokens; else ``TokenNotFound``."""
        now = self.clock.now()
        if not is_token_id(token_id) or not await self.store.revoke_token(
            token_id, now=now, subject=principal.subject
        ):
            raise TokenNotFound
        await self._audit(
            AuditEventType.TOKEN_REVOKED,
            now,
            client,
            actor=principal,
            credential_id=token_id,
            by="owner",
        )

    async def revoke_any(
        self,
        token_id: str,
        *,
        client: ClientInfo | None = None,
        actor: Principal | None = None,
    ) -> None:
        """Revoke anyone's live token (an administrator's action: ``actor`` when signed in,
        ``None`` for the admin token); else ``TokenNotFound``."""
        now = self.clock.now()
        if not is_token_id(token_id) or not await self.store.revoke_token(
            token_id, now=now, subject=None
        ):
            raise TokenNotFound
        await self._audit(
            AuditEventType.TOKEN_REVOKED,
            now,
            client,
            actor=actor,
            credential_id=token_id,
            by="admin",
        )

    async def _audit(
        self,
        type: AuditEventType,
        now: datetime,
        client: ClientInfo | None,
        *,
        actor: Principal | None,
        **detail: str,
    ) -> None:
        if self.reporter is not None:
            await self.reporter.emit(
                type,
                at=now,
                client=client,
                detail=detail,
                actor=None if actor is None else (actor.subject, actor.email),
            )

    async def authenticate(self, bearer: str) -> Principal:
        """The principal a live token acts for (its ``last_used`` set to now); a malformed,
        unknown, revoked or expired one is ``InvalidApiToken``."""
        raw = parse_token(bearer)
        if raw is None:
            raise InvalidApiToken
        record = await self.store.use_token(token_digest(raw), now=self.clock.now())
        if record is None:
            raise InvalidApiToken
        return Principal(
            subject=record.subject,
            email=record.email,
            groups=record.groups,
            mfa=False,
            auth_time=None,
            via="token",
            scopes=frozenset(record.scopes),
            token_id=record.token_id,
        )
