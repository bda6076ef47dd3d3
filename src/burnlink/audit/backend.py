"""The audit interface: what an audit backend implements, in one place.

- ``AuditStore``: the append-only, HMAC-chained log (the chain's logic is in ``audit.chain``).
- ``ExpiryWatch``: the watch rows beside the log, from which expiries are audited
  (``audit.watch`` says why they exist).
- ``AuditBackend``: both in one database, and ``write``, which appends events and changes
  watch rows in one transaction; it is what ``open_audit_store`` returns.

Implementations: ``audit.sqlite`` (also ``memory://``) and ``audit.postgres``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from burnlink.audit.chain import AuditEntry, ChainBounds, ChainState
from burnlink.audit.events import AuditEvent, AuditEventType
from burnlink.audit.outbox import Sealable
from burnlink.audit.watch import Watched

__all__ = ["AuditBackend", "AuditStore", "ExpiryWatch"]


class AuditStore(Protocol):
    """Append-only storage of audit entries. Implementations: ``audit.sqlite``, ``audit.postgres``.

    Every method raises ``StorageUnavailable`` when the backend fails.
    """

    async def append(self, event: AuditEvent) -> AuditEntry:
        """Append ``event`` as the next entry, atomically across processes.

        Reading the head, inserting the entry and moving the head happen in one transaction
        that holds the backend's write lock, so concurrent appenders in any number of
        processes produce one gap-free chain.
        """
        ...

    def iter_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Sequence[AuditEventType] | None = None,
        after_seq: int | None = None,
        through_seq: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[AuditEntry]:
        """Stream entries in ``seq`` order, read in pages (no lock is held between pages).

        ``since`` is inclusive and ``until`` exclusive (on ``event.at``); ``types`` keeps
        only those types; ``after_seq``/``through_seq`` bound ``seq``; ``limit`` caps the
        count. Raises ``CorruptEntry`` for an entry whose stored event cannot be read.
        """
        ...

    async def chain_state(self) -> ChainState:
        """The state row: base, head and their MAC."""
        ...

    def is_authentic(self, item: ChainState | AuditEntry) -> bool:
        """Whether a state row or an entry carries a valid MAC under this log's key."""
        ...

    async def bounds(self) -> ChainBounds:
        """The state row (``None`` if missing) and the span of stored entries, read in one
        snapshot, without writing anything."""
        ...

    async def check_writable(self) -> None:
        """Take the write lock and rewrite the state row as it is, then roll back: raises
        ``StorageUnavailable`` when an append would fail now (``/readyz``)."""
        ...

    async def purge_before(self, cutoff: datetime, *, limit: int | None = None) -> int:
        """Remove the oldest entries whose events are before ``cutoff``; return how many.

        Only a prefix of the chain is removed (it stops at the first entry at or after
        ``cutoff``), at most ``limit`` entries per call. The base moves to the last removed
        entry in the same transaction, so the rest stays verifiable.
        """
        ...

    async def ping(self) -> None:
        """Check that the backend answers."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


class ExpiryWatch(Protocol):
    """The watch rows. Every method raises ``StorageUnavailable`` when the backend fails."""

    async def watch(self, item: Watched) -> None:
        """Add (or replace) the row for ``item.secret_id``."""
        ...

    async def unwatch(self, secret_id: str) -> None:
        """Remove the row of a secret that ended another way (no error if there is none)."""
        ...

    async def claim_due(self, *, now: datetime, limit: int) -> list[Watched]:
        """Atomically remove and return up to ``limit`` rows with ``expires_at <= now``,
        earliest first. Concurrent callers never get the same row."""
        ...


class AuditBackend(AuditStore, ExpiryWatch, Protocol):
    """What ``open_audit_store`` returns: the log and the expiry watch in one database."""

    async def write(
        self,
        events: Sequence[AuditEvent],
        *,
        watch: Sequence[Watched] = (),
        unwatch: Sequence[str] = (),
    ) -> list[AuditEntry]:
        """Append ``events`` (in order) and change watch rows, all in one transaction.

        Returns the new entries. Either everything is written or nothing is
        (``StorageUnavailable``). Watches are written before unwatches.
        """
        ...

    async def seal(self, records: Sequence[Sealable]) -> list[AuditEntry]:
        """Append the events of ``records`` whose ids this log has not sealed before, with
        their watch changes, in one transaction; return the new entries (``audit.outbox``).
        A record sealed before is skipped, so a record handed out twice is appended once;
        only the records appended are decoded (``Sealable.record()``).
        """
        ...

    def seal_turn(self) -> AbstractAsyncContextManager[bool]:
        """Whether this process's sealer has the log's turn to seal, held until the block
        ends: ``True`` in at most one process at a time (the others' sealers skip their run,
        as the one with the turn seals what they would have). A turn is never waited for,
        and a process that ends, even by ``kill -9``, gives its turn up. Sealing without the
        turn stays correct (``seal`` appends a record once); the turn only spares the others
        from fetching and decoding the same records.
        """
        ...
