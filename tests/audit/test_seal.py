"""``AuditBackend.seal`` on SQLite and PostgreSQL: outbox records appended to the chain once
each, however often and by however many sealers they are handed out, with their watch
changes, and a chain that verifies after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from burnlink.audit import AuditBackend, Watched, open_audit_store
from burnlink.audit.outbox import OutboxRecord
from burnlink.audit.sqlite import SqliteAuditStore
from burnlink.audit.verify import verify_store
from burnlink.errors import StorageUnavailable
from burnlink.store.sqlite.writer_lock import WriterLock
from tests.audit.conftest import KEY, T0, make_event

pytestmark = pytest.mark.anyio


@pytest.fixture
async def audit(audit_url: str) -> AsyncIterator[AuditBackend]:
    store = await open_audit_store(audit_url, key=KEY)
    try:
        yield store
    finally:
        await store.aclose()


def records(count: int, *, start: int = 0) -> list[OutboxRecord]:
    return [OutboxRecord(make_event(n)) for n in range(start, start + count)]


async def logged(audit: AuditBackend) -> list[int]:
    """The ``n`` of every event in the log, in chain order."""
    return [int(str(entry.event.detail["n"])) async for entry in audit.iter_entries()]


async def test_seal_appends_records_in_order_and_returns_the_new_entries(
    audit: AuditBackend,
) -> None:
    batch = records(3)

    entries = await audit.seal(batch)

    assert [e.seq for e in entries] == [1, 2, 3]
    assert [e.event for e in entries] == [r.event for r in batch]
    assert [e async for e in audit.iter_entries()] == entries
    assert await verify_store(audit, KEY)


async def test_seal_appends_each_record_once_when_sealed_twice(audit: AuditBackend) -> None:
    first = records(3)
    await audit.seal(first)

    # Handed out again (the sealer crashed before acknowledging), with newer ones behind.
    again = await audit.seal([*first, *records(2, start=3)])

    assert [e.seq for e in again] == [4, 5]
    assert await audit.seal(first) == []
    assert await logged(audit) == [0, 1, 2, 3, 4]
    assert await verify_store(audit, KEY)


async def test_seal_appends_a_record_repeated_in_one_batch_once(audit: AuditBackend) -> None:
    one, two = records(2)

    entries = await audit.seal([one, two, one, two])

    assert [e.event for e in entries] == [one.event, two.event]
    assert await verify_store(audit, KEY)


async def test_seal_by_concurrent_sealers_appends_each_record_once(audit_url: str) -> None:
    """Two sealers (two connections or pools, as two processes would have) handed
    overlapping batches at once: every record is in the log once, and the chain holds."""
    sealers = [await open_audit_store(audit_url, key=KEY) for _ in range(2)]
    try:
        batch = records(60)
        appended: list[int] = []

        async def seal(sealer: AuditBackend, part: list[OutboxRecord]) -> None:
            appended.extend(e.seq for e in await sealer.seal(part))

        for start in range(0, 60, 12):
            async with anyio.create_task_group() as group:
                group.start_soon(seal, sealers[0], batch[start : start + 8])
                group.start_soon(seal, sealers[1], batch[start + 4 : start + 12])
                group.start_soon(seal, sealers[0], batch[start : start + 12])

        assert sorted(appended) == list(range(1, 61))
        assert sorted(await logged(sealers[1])) == list(range(60))
        assert await verify_store(sealers[0], KEY)
    finally:
        for sealer in sealers:
            await sealer.aclose()


async def test_seal_applies_the_watch_changes_of_the_records_it_appends(
    audit: AuditBackend,
) -> None:
    soon = Watched("secret-a", T0 + timedelta(hours=1), "https://hooks.example/a")
    later = Watched("secret-b", T0 + timedelta(hours=2))
    ended = Watched("secret-c", T0 + timedelta(hours=3))
    created = [OutboxRecord(make_event(n), watch=w) for n, w in enumerate((soon, later, ended))]
    await audit.seal(created)

    burned = OutboxRecord(make_event(3), unwatch="secret-c")
    await audit.seal([burned])
    # A record sealed before changes no watch when handed out again: secret-c stays unwatched.
    await audit.seal([created[2]])

    due = await audit.claim_due(now=T0 + timedelta(days=1), limit=10)
    assert due == [soon, later]
    assert [w.notify_url for w in due] == [soon.notify_url, None]
    assert await verify_store(audit, KEY)


async def test_seal_of_a_secret_watched_and_unwatched_in_one_batch_leaves_it_unwatched(
    audit: AuditBackend,
) -> None:
    """Watches are applied before unwatches, within a batch as across batches."""
    first = Watched("secret-a", T0 + timedelta(hours=1))
    again = Watched("secret-a", T0 + timedelta(hours=2), "https://hooks.example/a")
    other = Watched("secret-b", T0 + timedelta(hours=3))
    await audit.seal(
        [
            OutboxRecord(make_event(0), watch=first),
            OutboxRecord(make_event(1), watch=other),
            OutboxRecord(make_event(2), unwatch="secret-b"),
            OutboxRecord(make_event(3), watch=again),
        ]
    )

    assert await audit.claim_due(now=T0 + timedelta(days=1), limit=10) == [again]


class Undecoded:
    """A ``Sealable`` that counts its decodings."""

    def __init__(self, record: OutboxRecord) -> None:
        self.id = record.id
        self._record = record
        self.decoded = 0

    def record(self) -> OutboxRecord:
        self.decoded += 1
        return self._record


async def test_seal_decodes_only_the_records_it_appends(audit: AuditBackend) -> None:
    """A record another sealer (or an earlier run) has sealed costs no decoding."""
    batch = records(4)
    await audit.seal(batch[:2])
    handed_out = [Undecoded(r) for r in [*batch, batch[3]]]

    entries = await audit.seal(handed_out)

    assert [e.event for e in entries] == [r.event for r in batch[2:]]
    assert [item.decoded for item in handed_out] == [0, 0, 1, 1, 0]
    assert await verify_store(audit, KEY)


async def test_seal_forgets_sealed_ids_long_after_their_event(audit: AuditBackend) -> None:
    """Ids are remembered for a week after the newest sealed event, not for ever: a record
    handed out again after that would be appended again (no record waits that long)."""
    old = OutboxRecord(make_event(0, at=T0))
    await audit.seal([old])
    await audit.seal([OutboxRecord(make_event(1, at=T0 + timedelta(days=6)))])
    assert await audit.seal([old]) == []

    await audit.seal([OutboxRecord(make_event(2, at=T0 + timedelta(days=8)))])

    assert len(await audit.seal([old])) == 1
    assert await verify_store(audit, KEY)


async def test_sqlite_seal_of_a_batch_already_sealed_waits_for_no_write_lock(
    tmp_path: Path,
) -> None:
    """The write lock of a SQLite log is the file's, which the store's writes share: a sealer
    that finds its batch sealed by another (a second worker's) leaves it alone, and a batch
    is decoded before the lock is taken, not under it."""
    path = tmp_path / "audit.db"
    audit = await SqliteAuditStore.open(str(path), key=KEY, busy_timeout=timedelta(seconds=0.2))
    try:
        batch = records(3)
        await audit.seal(batch)
        decoded = [Undecoded(r) for r in [*batch, *records(1, start=3)]]
        with WriterLock.beside(str(path), timeout=timedelta(seconds=1)):
            assert await audit.seal(batch) == []
            with pytest.raises(StorageUnavailable):
                await audit.seal(decoded)
            assert [item.decoded for item in decoded] == [0, 0, 0, 1]
        assert len(await audit.seal(decoded)) == 1
        assert await verify_store(audit, KEY)
    finally:
        await audit.aclose()


@pytest.mark.parametrize("size", [100, 300])
async def test_sqlite_seal_runs_the_same_few_statements_whatever_the_batch(
    tmp_path: Path, size: int
) -> None:
    """A batch is a handful of statements, not a few per record: on the log's thread each
    statement hands the GIL to the event loop and waits to get it back, so under load a
    statement a record made a batch of 256 take about a second (``insert_rows``)."""
    audit = await SqliteAuditStore.open(str(tmp_path / "audit.db"), key=KEY)
    statements: list[str] = []
    try:
        batch = [
            OutboxRecord(
                make_event(n),
                watch=Watched(f"secret-{n}", T0 + timedelta(hours=1)) if n % 2 else None,
                unwatch=f"secret-{n - 1}" if n % 4 == 0 and n else None,
            )
            for n in range(size)
        ]
        await audit._worker.run(lambda db: db.set_trace_callback(statements.append))

        entries = await audit.seal(batch)

        await audit._worker.run(lambda db: db.set_trace_callback(None))
        assert [e.event for e in entries] == [r.event for r in batch]
        # A trigger firing on a row traces its statement again: count each statement once.
        run = [sql for n, sql in enumerate(statements) if n == 0 or sql != statements[n - 1]]
        assert len(run) <= 32, run
        due = await audit.claim_due(now=T0 + timedelta(days=1), limit=size)
        unwatched = {f"secret-{n - 1}" for n in range(size) if n % 4 == 0 and n}
        assert sorted(w.secret_id for w in due) == sorted(
            f"secret-{n}" for n in range(size) if n % 2 and f"secret-{n}" not in unwatched
        )
        assert await verify_store(audit, KEY)
    finally:
        await audit.aclose()
