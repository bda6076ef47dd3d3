"""The sealer: moves events recorded in the secret store's outbox into the audit log.

An action records its event in the store, atomically with the change it describes
(``audit.outbox``). The sealer takes the outbox's oldest records in batches, appends them
to the HMAC-chained log in one transaction (``AuditBackend.seal``, which appends each record
id at most once), copies the new entries to the JSON Lines sink, and only then acknowledges
them in the store. A crash or ``kill -9`` at any point loses nothing: a record not yet
acknowledged is sealed (or skipped as already sealed) by the next run, in this process or
another.

The window between record and seal is the time a record waits in the outbox: while the log
answers, at most ``GAP`` (50 ms) after the sealer's last run, since each action also wakes it
(``wake``); at most one ``interval`` when nothing does. With several worker processes, the
sealers take turns (``AuditBackend.seal_turn``): the one with the turn seals what the others'
actions recorded too, and a run that finds the turn taken skips. While
the log is down, records wait in the store, actions go on, ``/readyz`` answers 503 and
``burnlink_store_errors_total{store="audit"}`` counts the failed attempts. A record that does
not parse (the store was damaged or altered) is sealed as an ``alert`` with
``detail.reason: unreadable_event`` in its place, and sealing goes on.

Records are handed to the log undecoded (``Stored``), named by the id their first bytes carry
(``outbox.peek_id``): the log decodes and validates only those it has not sealed yet, so with
several worker processes, each with its sealer, a batch one of them has sealed costs the
others no decoding. A record the sealer's own process wrote is not decoded at all when the
store hands out the very bytes it wrote (``outbox.WrittenRecords``): it is sealed as built.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from contextlib import suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from burnlink.audit.events import AuditEventType, Outcome, audit_event
from burnlink.audit.outbox import OutboxRecord, WrittenRecords, peek_id
from burnlink.errors import StorageError
from burnlink.metrics import Metrics, StoreName

if TYPE_CHECKING:
    from burnlink.audit import AuditBackend
    from burnlink.audit.export import JsonLinesSink
    from burnlink.store import Pending, SecretStore

__all__ = ["BATCH", "Sealer", "Stored"]

log = logging.getLogger("burnlink.audit")

BATCH: Final = 64
"""Records sealed per transaction at most. A SQLite log seals on the event loop when nothing
has to wait (``SqliteWorker.transaction``), holding it while it appends: a batch of 64 held it
about a quarter as long as the ~200 a busy server's sealer found every 50 ms (stop 45 in
docs/operations.md), and ``drain`` gives the loop its turns between batches (each reads
and acknowledges in the store). Smaller batches cost more per record: 32 about 10 % more
than 256, 64 about 2 % (``bench.sealer --instructions``)."""
GAP: Final = 0.05
"""Seconds at least between two runs of one sealer: a busy server seals its events in batches,
not a few at a time (each run costs a read, a transaction and an acknowledgement)."""


class Sealer:
    """Seals the outbox of ``store`` into ``audit``; see the module docstring."""

    def __init__(
        self,
        store: SecretStore,
        audit: AuditBackend | None,
        *,
        sink: JsonLinesSink | None = None,
        metrics: Metrics | None = None,
        batch: int = BATCH,
        gap: float = GAP,
        written: WrittenRecords | None = None,
    ) -> None:
        """Without ``audit`` (a service used as a library) records are acknowledged unsealed.
        ``written`` holds the records this process stored, taken as they are rather than
        decoded when the store hands out the same bytes."""
        self.store = store
        self.written = written
        self.audit = audit
        self.sink = sink
        self.metrics = metrics or Metrics()
        self.batch = batch
        self.gap = gap
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.failing = False
        """Whether the last attempt failed (the log or the store did not answer)."""

    def wake(self) -> None:
        """Ask the running sealer to seal now rather than at its next beat."""
        self._wake.set()

    async def seal(self) -> int:
        """Seal one batch; return how many records it took from the outbox.

        Raises ``StorageError`` when the store or the log fails (nothing is acknowledged
        then).
        """
        async with self._lock:
            pending = await self.store.pending_events(limit=self.batch)
            if not pending:
                return 0
            if self.audit is not None:
                try:
                    written = self.written
                    entries = await self.audit.seal([Stored(p, written) for p in pending])
                except StorageError:
                    self.metrics.store_error(StoreName.AUDIT)
                    raise
                if self.sink is not None:
                    for entry in entries:
                        self.sink.write(entry)
            await self.store.ack_events([p.ref for p in pending])
            return len(pending)

    async def drain(self) -> int:
        """Seal until the outbox is empty; return how many records were taken."""
        total = 0
        while True:
            taken = await self.seal()
            total += taken
            if taken < self.batch:
                return total

    async def drain_in_turn(self) -> int | None:
        """``drain`` if this process has the log's seal turn (``AuditBackend.seal_turn``),
        held until the outbox is empty; ``None``, at once, when another process has it.

        What ``run`` does on each beat: with several worker processes, one sealer seals while
        the others skip, instead of all of them fetching and decoding the same records (a
        reader that must see every sealed event calls ``drain``, which never skips)."""
        if self.audit is None:
            return await self.drain()
        async with self.audit.seal_turn() as mine:
            return await self.drain() if mine else None

    async def run(self, interval: float) -> None:
        """Seal every ``interval`` seconds, or sooner when woken (but ``gap`` seconds at least
        after the last run), until cancelled; a run that finds another process's sealer at
        work skips (``drain_in_turn``)."""
        while True:
            await asyncio.sleep(self.gap)
            self._wake.clear()
            try:
                taken = await self.drain_in_turn()
            except StorageError as exc:
                if not self.failing:
                    name = type(exc).__name__
                    log.error("audit sealing failed (%s); events wait in the store", name)
                self.failing = True
            else:
                if taken is not None:
                    self.failing = False
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)


UNREADABLE: Final = "unreadable_event"
"""``detail.reason`` of the ``alert`` sealed in place of an outbox record that does not parse."""


class Stored:
    """An outbox record as the store handed it out (``Sealable``): named by its id, read
    without decoding it (``outbox.peek_id``), and decoded only when the log is about to
    append it, so a record another sealer has already sealed costs no decoding."""

    __slots__ = ("_pending", "_record", "_written", "id")

    def __init__(self, pending: Pending, written: WrittenRecords | None = None) -> None:
        """Name ``pending``; one that cannot be named without decoding is decoded now. A
        record of ``written`` with the same bytes is taken from there instead of decoded."""
        self._pending = pending
        self._written = written
        self._record: OutboxRecord | None = None
        peeked = peek_id(pending.outbox)
        if peeked is None:
            self._record = _decoded(pending, _ref_id(pending), named=False)
            peeked = self._record.id
        self.id: str = peeked
        """The record's id (an unreadable record's alert's, if it has none)."""

    def record(self) -> OutboxRecord:
        """The decoded record, or the ``alert`` sealed in its place (see ``_decoded``)."""
        if self._record is None:
            written = self._written
            kept = None if written is None else written.take(self.id, self._pending.outbox)
            self._record = kept or _decoded(self._pending, self.id, named=True)
        return self._record


def _ref_id(pending: Pending) -> str:
    """The id of the alert for a record that names no id of its own: from the store's ref."""
    return hashlib.sha256(b"burnlink outbox ref:" + pending.ref.encode()).hexdigest()[:32]


def _decoded(pending: Pending, alert_id: str, *, named: bool) -> OutboxRecord:
    """The record ``pending`` holds; for one that does not parse (a damaged or altered store),
    an ``alert`` in its place, so the log shows that something was there and sealing goes
    on. The alert has ``alert_id`` (the id the record's first bytes name, else one made from
    the store's ref), so it too is sealed once. A record ``named`` by its first bytes must
    carry that id (JSON lets a later member repeat it): the log sealed it under that name."""
    try:
        record = OutboxRecord.from_bytes(pending.outbox)
        if not named or record.id == alert_id:
            return record
    except ValueError:
        pass
    log.error("outbox record %s does not parse; sealed as an alert", pending.ref)
    event = audit_event(
        AuditEventType.ALERT,
        at=datetime.now(UTC),
        outcome=Outcome.FAILED,
        detail={"reason": UNREADABLE},
    )
    return OutboxRecord(event, id=alert_id)
