"""Group commit: concurrent audit writes of one process share transactions, and each caller
still gets its own entry or its own error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest

from burnlink.audit import AuditBackend, AuditEntry, AuditStore, Watched, verify_store
from burnlink.audit.batch import GroupCommit
from burnlink.audit.events import AuditEvent
from burnlink.errors import StorageUnavailable
from tests.audit.conftest import KEY, T0, make_event

pytestmark = pytest.mark.anyio


class Counting:
    """Passes writes through to a real backend, counting transactions; can be made to fail."""

    def __init__(self, inner: AuditBackend) -> None:
        self.inner = inner
        self.transactions: list[int] = []
        self.failing = False

    async def write(
        self,
        events: Sequence[AuditEvent],
        *,
        watch: Sequence[Watched] = (),
        unwatch: Sequence[str] = (),
    ) -> list[AuditEntry]:
        self.transactions.append(len(events) + len(watch) + len(unwatch))
        if self.failing:
            raise StorageUnavailable("The audit log is unavailable (test).")
        return await self.inner.write(events, watch=watch, unwatch=unwatch)


def _writer(audit_store: AuditStore) -> tuple[GroupCommit, Counting]:
    counting = Counting(audit_store)  # type: ignore[arg-type]
    return GroupCommit(counting), counting  # type: ignore[arg-type]


async def test_concurrent_appends_share_transactions_and_each_gets_its_entry(
    audit_store: AuditStore,
) -> None:
    writer, counting = _writer(audit_store)
    events = [make_event(n) for n in range(50)]

    entries = await asyncio.gather(*(writer.append(event) for event in events))

    assert [entry.event for entry in entries] == events
    assert [entry.seq for entry in entries] == list(range(1, 51))
    assert sum(counting.transactions) == 50
    assert len(counting.transactions) <= 2, counting.transactions
    result = await verify_store(audit_store, KEY)
    assert result.ok, result.describe()
    assert result.checked == 50


async def test_a_long_queue_is_split_into_batches(audit_store: AuditStore) -> None:
    counting = Counting(audit_store)  # type: ignore[arg-type]
    writer = GroupCommit(counting, max_batch=8)  # type: ignore[arg-type]

    await asyncio.gather(*(writer.append(make_event(n)) for n in range(20)))

    assert max(counting.transactions) <= 8
    assert (await verify_store(audit_store, KEY)).checked == 20


async def test_an_event_and_its_watch_are_written_together(audit_store: AuditStore) -> None:
    backend: AuditBackend = audit_store  # type: ignore[assignment]
    writer, counting = _writer(audit_store)
    watched = Watched("secret-0001-xxxxxxxxxx", T0, "https://hooks.example.com/x")

    await writer.append(make_event(1), watch=watched)

    assert counting.transactions == [2]
    assert await backend.claim_due(now=T0 + timedelta(seconds=1), limit=10) == [watched]


async def test_watch_then_unwatch_leaves_nothing_due(audit_store: AuditStore) -> None:
    backend: AuditBackend = audit_store  # type: ignore[assignment]
    writer, _ = _writer(audit_store)

    await writer.watch(Watched("secret-0002-xxxxxxxxxx", T0))
    await writer.unwatch("secret-0002-xxxxxxxxxx")

    assert await backend.claim_due(now=T0 + timedelta(days=1), limit=10) == []


async def test_a_failed_transaction_fails_every_write_in_it_and_the_next_one_works(
    audit_store: AuditStore,
) -> None:
    writer, counting = _writer(audit_store)
    counting.failing = True

    results = await asyncio.gather(
        *(writer.append(make_event(n)) for n in range(5)), return_exceptions=True
    )

    assert all(isinstance(r, StorageUnavailable) for r in results), results
    counting.failing = False
    entry = await writer.append(make_event(9))
    assert entry.seq == 1  # nothing of the failed batch was written
    assert (await verify_store(audit_store, KEY)).ok


async def test_a_cancelled_caller_does_not_stop_the_write(audit_store: AuditStore) -> None:
    writer, _ = _writer(audit_store)
    caller = asyncio.create_task(writer.append(make_event(1)))
    await asyncio.sleep(0)

    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await writer.aclose()

    assert [e.event async for e in audit_store.iter_entries()] == [make_event(1)]
