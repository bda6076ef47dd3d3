"""The part of the store contract that keeps who is signed in: sessions and API tokens.

Both are kept by digest only (``ids.token_digest`` of the random value the user holds), so a
copy of the store signs no one in. They live in the store, not in process memory, so that a
sign-out, an expiry or a revocation holds on every instance at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from burnlink.models import ReceiptRecord

__all__ = [
    "ApiTokens",
    "OwnedSecrets",
    "SessionRecord",
    "Sessions",
    "SignInRecords",
    "TokenRecord",
    "token_ended",
]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A signed-in browser session, as the store keeps it."""

    digest: bytes = field(repr=False)
    """Digest of the session id in the user's cookie."""
    subject: str
    """The identity provider's ``sub`` for the user (with the issuer, unique)."""
    email: str | None
    groups: tuple[str, ...]
    mfa: bool
    """Whether the sign-in carried a second factor (``amr`` or ``acr``)."""
    auth_time: datetime
    """When the user last authenticated at the provider (the ID token's ``auth_time``)."""
    created_at: datetime
    last_seen: datetime
    expires_at: datetime
    """The absolute end: the session is gone at this time, however active."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A personal API token, as the store keeps it (never the token itself)."""

    token_id: str
    """Public id, shown in lists and used to revoke."""
    digest: bytes = field(repr=False)
    subject: str
    email: str | None
    groups: tuple[str, ...]
    """The owner's groups when the token was made: the policy the token is held to."""
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    last_used: datetime | None = None
    revoked_at: datetime | None = None


def token_ended(token: TokenRecord, now: datetime) -> datetime | None:
    """When ``token`` stopped working (revoked, or expired by ``now``); ``None`` while live.

    A token is listed until ``retention`` after this time, and purged after it."""
    if token.revoked_at is not None:
        return token.revoked_at
    if token.expires_at <= now:
        return token.expires_at
    return None


class Sessions(Protocol):
    """Browser sessions, by digest of the session id."""

    async def put_session(self, record: SessionRecord) -> None:
        """Store a new session; a digest already kept raises ``DuplicateId``."""

    async def touch_session(
        self, digest: bytes, *, now: datetime, idle_seconds: int
    ) -> SessionRecord | None:
        """Atomically set the live session's ``last_seen`` to ``now`` and return it so updated;
        ``None`` (and the session deleted) when there is none, when ``now >=
        expires_at``, or when it was last seen ``idle_seconds`` or more before ``now``."""

    async def end_session(self, digest: bytes) -> bool:
        """Delete the session; whether there was one."""

    async def end_sessions_of(self, subject: str) -> int:
        """Delete every session of ``subject``; how many there were. A session put while it
        runs is either ended and counted, or left live."""


class ApiTokens(Protocol):
    """Personal API tokens, by digest; listed and revoked by owner and id."""

    async def put_token(self, record: TokenRecord) -> None:
        """Store a new token; a digest or ``token_id`` already kept raises ``DuplicateId``."""

    async def use_token(self, digest: bytes, *, now: datetime) -> TokenRecord | None:
        """Atomically set the token's ``last_used`` to ``now`` and return it so updated; ``None``
        when there is none, when it is revoked, or when ``now >= expires_at``."""

    async def list_tokens(self, subject: str, *, now: datetime) -> list[TokenRecord]:
        """The tokens of ``subject``, newest first: live ones, and revoked or expired ones
        until ``retention`` after they ended (so a user sees what was revoked, for a while).
        Newest first is by ``created_at``, then ``token_id``, both descending; ``purge_expired``
        deletes a token once ``retention`` has passed since it ended (``token_ended``)."""

    async def refresh_tokens(
        self, subject: str, *, email: str | None, groups: tuple[str, ...]
    ) -> int:
        """Give every kept token of ``subject`` the email and groups of their latest sign-in,
        so a token is held to the groups its user has now, not those they had when it was
        made; how many tokens there were."""

    async def all_tokens(self, *, now: datetime, limit: int) -> list[TokenRecord]:
        """Every user's tokens, as ``list_tokens`` lists one user's (live ones, and ended ones
        until ``retention`` after they ended), newest first, at most ``limit``: what the admin
        console lists."""

    async def revoke_token(self, token_id: str, *, now: datetime, subject: str | None) -> bool:
        """Mark the token revoked at ``now``; ``subject``, when given, must own it (``None``:
        an administrator's revoke of anyone's token). Whether a live token was revoked (a
        second revoke, an expired token, or another owner's token is ``False``)."""


class SignInRecords(Sessions, ApiTokens, Protocol):
    """What a sign-in writes: the session, and the user's tokens brought up to date."""


class OwnedSecrets(Protocol):
    """The secrets a signed-in sender created (``SecretRecord.owner``), for "my secrets"."""

    async def owned_secrets(self, owner: str, *, now: datetime, limit: int) -> list[ReceiptRecord]:
        """The receipts of at most ``limit`` secrets whose owner is ``owner``, newest first:
        live ones, and ended or expired ones whose receipt is still kept (``retention``).
        Newest first is by ``created_at``, then ``secret_id``, both descending. Read through
        an index on the owner, never a scan of every secret; each receipt carries the
        secret's ``owner``, ``owner_email`` and ``label``."""
