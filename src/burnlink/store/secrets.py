"""The part of the store contract that keeps secrets and their receipts.

A ``SecretRecords`` creates, reveals (``reveal``, ``consume``), counts wrong passphrases,
burns and expires secrets, and keeps each one's receipt. See ``burnlink.store.contract`` for
the rules every call keeps (time passed in, atomic steps, translated driver errors). Every
call that changes a secret keeps the ``Recorded`` events of that change in the same atomic
step, or none when the change does not happen (``burnlink.store.outbox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Final, Protocol

import msgspec

from burnlink.ids import digests_equal
from burnlink.models import (
    AccessPolicy,
    Consumed,
    EndReason,
    Event,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
)
from burnlink.redacted import Redacted
from burnlink.store.counters import Hit

__all__ = [
    "MAX_EVENTS_PER_KIND",
    "NO_RULES_PREFIX",
    "STAND_IN_DIGEST",
    "Attempt",
    "Recorded",
    "Reveal",
    "SecretRecords",
    "ViewRecord",
    "needs_exchange",
    "takes_view",
]

MAX_EVENTS_PER_KIND = 200
"""Receipts keep at most this many events of each kind; later ones of that kind are dropped.

Counted per kind, so a flood of one kind (page opens, which anyone with the id can cause)
cannot grow a row nor push out the events a sender relies on (created, viewed, burned,
expired, locked, denied); the receipt says which kinds reached the cap."""


class Recorded(Redacted, frozen=True):
    """One event as a store keeps it with the change it describes."""

    line: Event | None
    """The receipt's line for it, or ``None`` when the receipt does not list such events."""
    outbox: bytes
    """Its ``OutboxRecord`` bytes, kept until ``ack_events``; opaque to the store."""

    _HIDDEN: ClassVar[tuple[str, ...]] = ("outbox",)


NO_RULES_PREFIX: Final = AccessPolicy().to_bytes()[:-1]
"""How a stored policy (``AccessPolicy.to_bytes``) begins exactly when it imposes no access
rule: its rule members come first and empty, whatever follows (``notify_url``,
``creator_country``). A backend that cannot decode a policy (a Lua script, an SQL statement)
tells a rule-free secret by this prefix; a missing policy (older rows) has no rules either."""


def needs_exchange(meta: SecretMeta) -> bool:
    """Whether revealing ``meta``'s secret needs more than its link: a passphrase, or an
    access rule (address, country, recipient code). ``reveal`` takes a view only without."""
    return meta.passphrase is not None or not meta.policy.is_empty()


def takes_view(meta: SecretMeta, access_digest: bytes) -> bool:
    """Whether ``reveal`` may take a view of ``meta``'s secret in the lookup: it needs nothing
    but its link (``needs_exchange``) and ``access_digest`` is its own (constant time). Both
    are always worked out, without a short cut, so that every lookup costs the same."""
    exchange = needs_exchange(meta)
    matches = digests_equal(access_digest, meta.access_digest)
    return matches and not exchange


STAND_IN_DIGEST: Final = bytes(32)
"""The access digest of the stand-in a lookup of an id that is not live decodes and weighs in
place of a secret (``SecretStore.reveal``): no token hashes to it. A wrong link to a live
secret then costs what an unknown id costs, so the time of a 404 does not tell a scanner
which ids are live (docs/access.md)."""


class ViewRecord(Redacted, frozen=True):
    """A view's event as the service builds it before the secret is read: the receipt's line,
    and the outbox record in two parts around the one value only the store knows, the
    secret's ``max_views`` (written between them in decimal ASCII).

    The service builds the whole record (``audit.outbox``) with a placeholder there and cuts
    it; a store completes it (``completed``, or the same concatenation in Lua or SQL) in the
    operation that takes the view, so the record kept is byte for byte the one the service
    would have built after reading the secret."""

    line: Event | None
    head: bytes
    tail: bytes

    _HIDDEN: ClassVar[tuple[str, ...]] = ("head", "tail")

    def completed(self, max_views: int) -> Recorded:
        """The event as kept for a secret of ``max_views`` views."""
        return Recorded(self.line, self.head + b"%d" % max_views + self.tail)


class Reveal(msgspec.Struct, frozen=True):
    """What ``reveal`` did: the counts, the secret as found, and the view if it took one (a
    ``Struct``, built on every reveal)."""

    counts: list[int]
    """The totals of the call's ``hits``, in order."""
    meta: SecretMeta | None
    """The live secret's metadata as read before any view was taken; ``None`` when it is
    gone, expired or unknown, or when a count passed its limit (then nothing was read)."""
    consumed: Consumed | None = None
    """The view taken, with its envelope; ``None`` when none was (see ``reveal``)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What ``record_failure`` did with one wrong passphrase."""

    counted: bool
    """Whether it was counted: ``False`` when it would not have locked as the caller said."""
    attempts_left: int
    """Attempts left after it (counted), or as they still are (not counted); 0: locked, gone."""


class SecretRecords(Protocol):
    """Encrypted secrets and their receipts."""

    async def create(
        self, record: SecretRecord, *, events: Sequence[Recorded] = (), hits: Sequence[Hit] = ()
    ) -> list[int]:
        """Insert a secret with ``views_left = max_views``, its access policy and its receipt,
        and keep ``events`` (its ``created`` line becomes the receipt's first), all in one
        atomic step. Never overwrites: an existing id (live or in a kept receipt) raises
        ``DuplicateId`` and keeps nothing (whether ``hits`` were counted then is not said:
        with 128 random bits it does not happen).

        ``hits`` (the create's rate counters) are counted first, at ``record.created_at`` and
        in the same round trip, and their totals returned in order. If any total passes its
        hit's ``limit``, nothing is inserted or kept but the counts: the caller refuses the
        request, which still counted. Each count is atomic on its own; on Redis Cluster, where
        the counters live on other shards than the secret, they take a round trip of their
        own before the insert.
        """

    async def peek(self, secret_id: str, *, now: datetime) -> SecretMeta | None:
        """Metadata of a live secret, or ``None``. Never returns the envelope, never mutates."""

    async def reveal(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        hits: Sequence[Hit],
        view: ViewRecord | None = None,
    ) -> Reveal:
        """A reveal's one store operation: count ``hits`` (as ``Counters.hits``, whether or
        not the secret exists, so a refused request still counts), read the secret (as
        ``peek``), and with ``view`` take one view of it when nothing else is needed.

        If any total passes its hit's ``limit`` (as in ``create``), nothing else happens:
        no read, no view. Otherwise the answer carries the secret's metadata (or ``None``),
        and a view is taken (as ``consume`` takes it, keeping ``view.completed(max_views)``
        with it) only if ``view`` is given, the secret is live with views left,
        ``access_digest`` matches, and it ``needs_exchange`` nothing: no passphrase, no access
        rule (a policy starting ``NO_RULES_PREFIX``, or none). Else nothing is taken or kept,
        and the caller goes on from the metadata (and ``consume`` later, if it may).

        The view obeys ``consume``'s rules: with K concurrent callers and V views left,
        exactly ``min(K, V)`` take one (through either call), across processes too, and each
        view taken keeps its event. On a single node (SQLite, PostgreSQL, one Redis) it is
        one round trip and the counts decide the view atomically; on Redis Cluster the
        counters live on other shards than the secret, so they take a round trip of their
        own first (as in ``create``), and the view follows only when none is past its limit.
        """

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

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` expired secrets (ending their receipts as ``expired``),
        receipts past retention, counter windows that have ended, sessions past their
        ``expires_at`` and API tokens past ``retention`` after they ended; return how many
        secrets were deleted. The work done grows with the number of expired rows, not with the size
        of the store.
        """
