"""The records that pass between the service and the stores.

They hold digests of tokens, never tokens, and opaque envelopes, never plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class EventKind(StrEnum):
    """What happened to a secret, as listed on its receipt."""

    CREATED = "created"
    VIEWED = "viewed"
    WRONG_PASSPHRASE = "wrong_passphrase"  # noqa: S105 - an event name, not a password
    BURNED = "burned"
    LOCKED = "locked"
    EXPIRED = "expired"


class EndReason(StrEnum):
    """Why a secret no longer exists."""

    VIEWED = "viewed"
    """Its last allowed view was used."""
    BURNED = "burned"
    """Its sender burned it."""
    LOCKED = "locked"
    """Too many wrong passphrases."""
    EXPIRED = "expired"
    """Its time ran out."""


@dataclass(frozen=True, slots=True)
class PassphraseGate:
    """How a passphrase-protected secret checks the passphrase proof (never the passphrase)."""

    kdf: str
    iterations: int
    salt: bytes
    proof_digest: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """A new secret as the store keeps it."""

    secret_id: str
    envelope: bytes = field(repr=False)
    access_digest: bytes = field(repr=False)
    manage_digest: bytes = field(repr=False)
    created_at: datetime
    expires_at: datetime
    max_views: int
    max_attempts: int
    passphrase: PassphraseGate | None = None
    owner: str | None = None
    """Reserved for teams: who owns the secret. ``None`` for anonymous shares."""


@dataclass(frozen=True, slots=True)
class SecretMeta:
    """What ``peek`` returns about a live secret: everything but the envelope."""

    secret_id: str
    access_digest: bytes = field(repr=False)
    created_at: datetime
    expires_at: datetime
    max_views: int
    views_left: int
    attempts_left: int
    passphrase: PassphraseGate | None = None


@dataclass(frozen=True, slots=True)
class Consumed:
    """The result of a successful ``consume``: the envelope and the views still allowed."""

    envelope: bytes = field(repr=False)
    views_left: int


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a receipt's history. Never holds secret material."""

    at: datetime
    kind: EventKind
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """The sender's view of a secret; it outlives the secret by the retention period."""

    secret_id: str
    manage_digest: bytes = field(repr=False)
    created_at: datetime
    expires_at: datetime
    max_views: int
    views_used: int
    ended_at: datetime | None
    end_reason: EndReason | None
    events: tuple[Event, ...] = ()

    def state(self, now: datetime) -> str:
        """``active`` while the secret can be revealed, else why it ended."""
        if self.end_reason is not None:
            return self.end_reason.value
        if self.expires_at <= now:
            return EndReason.EXPIRED.value
        return "active"


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who made a request, as recorded on the receipt."""

    ip: str | None = None
    user_agent: str | None = None
