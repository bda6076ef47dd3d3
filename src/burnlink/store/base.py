"""The storage interface every backend implements, and the contract it must keep.

The contract is checked by one suite, ``tests/store/test_contract.py``, on every backend.

- Time is never read by a store: every call that depends on it takes ``now``.
- A secret whose ``expires_at <= now`` is treated as gone by every call, before any sweep.
- Each multi-step rule is one atomic statement, transaction or script inside the backend:
  never read-then-write across two round trips.
- Driver exceptions are translated into ``StorageUnavailable`` inside the backend.
- A store keeps each receipt until ``retention`` after the secret ended (or expired).
- Events: every call that changes a secret takes the ``Recorded`` events of that change and
  keeps them in the same atomic step, or not at all when the change does not happen: each
  one's receipt line on the secret's receipt (capped per kind) and its outbox record in the
  store's outbox, until the sealer acknowledges it (``audit.outbox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from burnlink.models import (
    CodeCheck,
    CodePut,
    Consumed,
    EndReason,
    Event,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
)

MAX_EVENTS_PER_KIND = 200
"""Receipts keep at most this many events of each kind; later ones of that kind are dropped.

Counted per kind, so a flood of one kind (page opens, which anyone with the id can cause)
cannot grow a row nor push out the events a sender relies on (created, viewed, burned,
expired, locked, denied); the receipt says which kinds reached the cap."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """One event as a store keeps it with the change it describes."""

    line: Event | None
    """The receipt's line for it, or ``None`` when the receipt does not list such events."""
    outbox: bytes = field(repr=False)
    """Its ``OutboxRecord`` bytes, kept until ``ack_events``; opaque to the store."""


@dataclass(frozen=True, slots=True)
class Pending:
    """An outbox record not yet acknowledged, under the store's own name for it."""

    ref: str
    outbox: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What ``record_failure`` did with one wrong passphrase."""

    counted: bool
    """Whether it was counted: ``False`` when it would not have locked as the caller said."""
    attempts_left: int
    """Attempts left after it (counted), or as they still are (not counted); 0: locked, gone."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One rate counter for ``SecretStore.hits``: add ``cost`` to ``bucket``'s current window
    of ``window`` seconds (``cost=0`` only reads it)."""

    bucket: str
    window: int
    cost: int = 1


class SecretStore(Protocol):
    """An async store of encrypted secrets and their receipts."""

    async def create(self, record: SecretRecord, *, events: Sequence[Recorded] = ()) -> None:
        """Insert a secret with ``views_left = max_views``, its access policy and its receipt,
        and keep ``events`` (its ``created`` line becomes the receipt's first), all in one
        atomic step. Never overwrites: an existing id (live or in a kept receipt) raises
        ``DuplicateId`` and keeps nothing.
        """

    async def peek(self, secret_id: str, *, now: datetime) -> SecretMeta | None:
        """Metadata of a live secret, or ``None``. Never returns the envelope, never mutates."""

    async def consume(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        events: Sequence[Recorded] = (),
    ) -> Consumed | None:
        """Atomically take one view.

        Succeeds only if the secret exists, ``expires_at > now``, ``views_left > 0`` and the
        access digest matches. It decrements ``views_left``, counts the view on the receipt,
        keeps ``events``, and at zero deletes
        the secret and ends the receipt as ``viewed``. With K concurrent callers and V views
        left, exactly ``min(K, V)`` get the envelope, across processes too. A failed consume
        keeps nothing.
        """

    async def record_failure(
        self, secret_id: str, *, now: datetime, locks: bool, events: Sequence[Recorded] = ()
    ) -> Attempt | None:
        """Atomically count one wrong passphrase, but only if it is the attempt that locks the
        secret (``attempts_left`` is 1) exactly when ``locks`` says so; ``None`` if gone.

        Counted, ``attempts_left`` goes down by one, and at zero the secret is deleted and its
        receipt ends as ``locked``; ``events`` (the attempt, and the lockout when ``locks``)
        are kept with it. Otherwise nothing changes or is kept, and the result says how many
        attempts are left. With K concurrent callers passing ``locks=True`` exactly
        one counts; with A attempts left, concurrent callers passing ``locks=False`` count at
        most A - 1 times and never lock. Across processes too.
        """

    async def burn(
        self,
        secret_id: str,
        *,
        now: datetime,
        reason: EndReason = EndReason.BURNED,
        events: Sequence[Recorded] = (),
    ) -> bool:
        """Delete a live secret and end its receipt as ``reason`` (``burned``, or ``locked``
        when its one-time codes ran out), keeping ``events``; return whether one existed
        (without one, nothing is kept)."""

    async def receipt(self, secret_id: str, *, now: datetime) -> ReceiptRecord | None:
        """The receipt with its events, or ``None`` once retention has passed."""

    async def record(self, secret_id: str | None, events: Sequence[Recorded]) -> None:
        """Keep ``events`` that change no secret (a refusal, an observation), atomically: each
        line goes on ``secret_id``'s receipt when there is one and its kind is not full, each
        outbox record into the outbox whatever the receipt."""

    async def pending_events(self, *, limit: int) -> list[Pending]:
        """Up to ``limit`` outbox records not yet acknowledged, oldest first. Reads only:
        concurrent callers may get the same records (the audit log seals each id once)."""

    async def ack_events(self, refs: Sequence[str]) -> None:
        """Delete these outbox records (by ``Pending.ref``); refs already gone are ignored."""

    async def put_code(
        self,
        secret_id: str,
        code_digest: bytes,
        *,
        now: datetime,
        expires_at: datetime,
        tries: int,
        resend_after: datetime,
        max_codes: int,
    ) -> CodePut:
        """Atomically replace the secret's one-time code, and say what was done.

        ``GONE`` if the secret is gone; ``TOO_SOON`` if the current code, live or not, was put
        after ``resend_after``, or if ``max_codes`` codes were put since the last match and
        the last is still live; ``SPENT`` if they were and it is not. In those cases nothing
        changes. Otherwise ``SENT``: the new code replaces the old one and counts one more.

        A code is live while ``now < expires_at`` and it has tries left. A code that is used
        up or expired is kept (with when it was put and how many were put) until a match or
        the end of its secret, so neither waiting nor wrong tries make room for more codes.
        """

    async def check_code(
        self, secret_id: str, code_digest: bytes, *, now: datetime
    ) -> CodeCheck | None:
        """Atomically check a one-time code; ``None`` if there is no live code.

        A match deletes the code (it is single-use) and with it the count of codes put. A
        mismatch takes one try; at zero tries the code is no longer live, but is kept.
        """

    async def hit(self, bucket: str, *, window: int, now: datetime, cost: int = 1) -> int:
        """Atomically add ``cost`` to ``bucket``'s current fixed window of ``window`` seconds
        (windows start at multiples of ``window`` since the epoch); return the total so far in
        that window, this one included. ``cost=0`` reads without counting. Shared by every
        process using the store.
        """

    async def hits(self, hits: Sequence[Hit], *, now: datetime) -> list[int]:
        """``hit`` for each of ``hits``, their totals in the same order, in one round trip to
        the store (a request's rate limits are checked together). Each count is atomic on its
        own; the set is not one transaction.
        """

    async def clear_hits(self, bucket: str, *, window: int, now: datetime) -> int:
        """Delete ``bucket``'s current window of ``window`` seconds (as ``hit`` counts it);
        return the total it held (0 if none). For an operator lifting a lock early."""

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` expired secrets (ending their receipts as ``expired``),
        receipts past retention, and counter windows that have ended; return how many secrets
        were deleted. The work done grows with the number of expired rows, not with the size
        of the store.
        """

    async def ping(self) -> None:
        """Return if the store answers, else raise ``StorageUnavailable``."""

    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""
