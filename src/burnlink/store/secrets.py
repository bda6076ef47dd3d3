"""The part of the store contract that keeps secrets and their receipts.

A ``SecretRecords`` creates, reveals (``consume``), counts wrong passphrases, burns and
expires secrets, and keeps each one's receipt. See ``burnlink.store.contract`` for the rules
every call keeps (time passed in, atomic steps, translated driver errors).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from burnlink.models import (
    Consumed,
    EndReason,
    Event,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
)

__all__ = ["MAX_EVENTS_PER_KIND", "Attempt", "SecretRecords"]

MAX_EVENTS_PER_KIND = 200
"""Receipts keep at most this many events of each kind; later ones of that kind are dropped.

Counted per kind, so a flood of one kind (page opens, which anyone with the id can cause)
cannot grow a row nor push out the events a sender relies on (created, viewed, burned,
expired, locked, denied); the receipt says which kinds reached the cap."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What ``record_failure`` did with one wrong passphrase."""

    counted: bool
    """Whether it was counted: ``False`` when it would not have locked as the caller said."""
    attempts_left: int
    """Attempts left after it (counted), or as they still are (not counted); 0: locked, gone."""


class SecretRecords(Protocol):
    """Encrypted secrets and their receipts."""

    async def create(self, record: SecretRecord, *, event: Event | None = None) -> None:
        """Insert a secret with ``views_left = max_views``, its access policy and its receipt.

        ``event`` (its ``created`` line) becomes the receipt's first event in the same atomic
        step. Never overwrites: an existing id (live or in a kept receipt) raises
        ``DuplicateId``.
        """

    async def peek(self, secret_id: str, *, now: datetime) -> SecretMeta | None:
        """Metadata of a live secret, or ``None``. Never returns the envelope, never mutates."""

    async def consume(
        self, secret_id: str, access_digest: bytes, *, now: datetime, event: Event | None = None
    ) -> Consumed | None:
        """Atomically take one view.

        Succeeds only if the secret exists, ``expires_at > now``, ``views_left > 0`` and the
        access digest matches. It decrements ``views_left``, counts the view on the receipt
        (appending ``event`` to its events, as ``add_event`` would), and at zero deletes the
        secret and ends the receipt as ``viewed``. With K concurrent callers and V views left,
        exactly ``min(K, V)`` get the envelope, across processes too. A failed consume appends
        nothing.
        """

    async def record_failure(self, secret_id: str, *, now: datetime, locks: bool) -> Attempt | None:
        """Atomically count one wrong passphrase, but only if it is the attempt that locks the
        secret (``attempts_left`` is 1) exactly when ``locks`` says so; ``None`` if gone.

        Counted, ``attempts_left`` goes down by one, and at zero the secret is deleted and its
        receipt ends as ``locked``. Otherwise nothing changes, and the result says how many
        attempts are left. The caller has audited the attempt, and the lockout with it when
        ``locks``, before this call (fail closed): so no secret is locked that the audit log
        does not already call locked. With K concurrent callers passing ``locks=True`` exactly
        one counts; with A attempts left, concurrent callers passing ``locks=False`` count at
        most A - 1 times and never lock. Across processes too.
        """

    async def burn(
        self, secret_id: str, *, now: datetime, reason: EndReason = EndReason.BURNED
    ) -> bool:
        """Delete a live secret and end its receipt as ``reason`` (``burned``, or ``locked``
        when its one-time codes ran out); return whether one existed."""

    async def receipt(self, secret_id: str, *, now: datetime) -> ReceiptRecord | None:
        """The receipt with its events, or ``None`` once retention has passed."""

    async def add_event(self, secret_id: str, event: Event) -> None:
        """Append an event to a kept receipt (ignored if there is none, or it is full)."""

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` expired secrets (ending their receipts as ``expired``),
        receipts past retention, and counter windows that have ended; return how many secrets
        were deleted. The work done grows with the number of expired rows, not with the size
        of the store.
        """
