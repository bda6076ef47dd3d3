"""Group commit: one process's concurrent audit writes share transactions.

Every audited action waits for its event to be durable before it takes effect (fail closed),
and every append moves the one chain head under the backend's write lock. Written one by one,
requests queue on that lock and on a commit each. ``GroupCommit`` keeps one writer per
process instead: writes that arrive while a transaction is in flight wait together and go
into the next one (``AuditBackend.write``), up to ``max_batch`` at a time. Each caller still
gets its own entry back, or the error of the transaction that held its write, so nothing
changes for the caller except that a busy process commits far less often.

The chain is unchanged: a batch of ``n`` events is ``n`` consecutive entries, appended under
the same lock a single append takes, so several processes still produce one chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from burnlink.audit.chain import AuditEntry
from burnlink.audit.events import AuditEvent
from burnlink.audit.watch import Watched
from burnlink.errors import StorageUnavailable

if TYPE_CHECKING:
    from burnlink.audit import AuditBackend

__all__ = ["MAX_BATCH", "GroupCommit"]

MAX_BATCH: Final = 256
"""Writes per transaction at most; a longer queue is written in several."""


@dataclass(slots=True)
class _Write:
    event: AuditEvent | None
    watch: Watched | None
    unwatch: str | None
    done: asyncio.Future[AuditEntry | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    """Funnels writes to ``backend`` through one writer task; see the module docstring."""

    def __init__(self, backend: AuditBackend, *, max_batch: int = MAX_BATCH) -> None:
        self.backend = backend
        self.max_batch = max_batch
        self._queue: list[_Write] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, event: AuditEvent, *, watch: Watched | None = None) -> AuditEntry:
        """Append ``event`` (and add ``watch`` in the same transaction); its entry."""
        entry = await self._submit(_Write(event, watch, None))
        assert entry is not None  # noqa: S101 - an event's write always yields its entry
        return entry

    async def watch(self, item: Watched) -> None:
        """Add (or replace) a watch row."""
        await self._submit(_Write(None, item, None))

    async def unwatch(self, secret_id: str) -> None:
        """Remove a watch row."""
        await self._submit(_Write(None, None, secret_id))

    async def _submit(self, write: _Write) -> AuditEntry | None:
        write.done.add_done_callback(_retrieve)
        self._queue.append(write)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._drain(), name="burnlink-audit-writer"
            )
        # The write goes ahead even if this caller is cancelled; shield it so that the
        # writer's result is never set on a cancelled future.
        return await asyncio.shield(write.done)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            try:
                entries = await self.backend.write(
                    [w.event for w in batch if w.event is not None],
                    watch=[w.watch for w in batch if w.watch is not None],
                    unwatch=[w.unwatch for w in batch if w.unwatch is not None],
                )
            except asyncio.CancelledError:
                _settle([*batch, *self._queue], StorageUnavailable("The audit log is closing."))
                self._queue.clear()
                raise
            except Exception as exc:  # noqa: BLE001 - each waiting caller gets it
                _settle(batch, exc)
                continue
            produced = iter(entries)
            for write in batch:
                if not write.done.done():
                    write.done.set_result(next(produced) if write.event is not None else None)

    async def aclose(self) -> None:
        """Wait for writes already queued."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)


def _retrieve(done: asyncio.Future[AuditEntry | None]) -> None:
    # A caller that was cancelled never reads its result; read the error here instead.
    if not done.cancelled():
        done.exception()


def _settle(batch: Sequence[_Write], exc: BaseException) -> None:
    for write in batch:
        if not write.done.done():
            write.done.set_exception(exc)
