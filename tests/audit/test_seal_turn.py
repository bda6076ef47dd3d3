"""The seal turn (``AuditBackend.seal_turn``) on SQLite and PostgreSQL: with several worker
processes, one sealer seals while the others skip their run, instead of all of them fetching
and decoding the same records; a process that dies gives its turn up; a reader's ``drain``
never waits for it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from burnlink.audit import AuditBackend, open_audit_store
from burnlink.audit.outbox import OutboxRecord
from burnlink.audit.sealer import Sealer
from burnlink.store import Recorded
from burnlink.store.memory import MemoryStore
from tests.audit.conftest import KEY, make_event

pytestmark = pytest.mark.anyio


@pytest.fixture
async def two_logs(audit_url: str) -> AsyncIterator[tuple[AuditBackend, AuditBackend]]:
    """One log opened twice, as two worker processes (or hosts) open it, on each backend."""
    first = await open_audit_store(audit_url, key=KEY)
    second = await open_audit_store(audit_url, key=KEY)
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


async def outbox_of(count: int) -> MemoryStore:
    """A store whose outbox holds ``count`` records, as ``count`` actions leave it."""
    store = MemoryStore(retention=timedelta(days=1))
    await store.record(
        None, [Recorded(None, OutboxRecord(make_event(n)).to_bytes()) for n in range(count)]
    )
    return store


async def logged(audit: AuditBackend) -> int:
    return len([entry async for entry in audit.iter_entries()])


async def test_turn_is_held_by_one_opener_of_the_log_at_a_time(
    two_logs: tuple[AuditBackend, AuditBackend],
) -> None:
    first, second = two_logs

    async with first.seal_turn() as mine:
        assert mine
        async with second.seal_turn() as theirs:
            assert not theirs
    async with second.seal_turn() as theirs:
        assert theirs  # given up when the first one's block ended


# A process that opens the log, takes the turn, says so and waits to be killed.
_HOLDER = """
import sys, time, anyio
from burnlink.audit import open_audit_store

async def main() -> None:
    audit = await open_audit_store(sys.argv[1], key=bytes(range(32)))
    async with audit.seal_turn() as mine:
        print("held" if mine else "refused", flush=True)
        time.sleep(60)

anyio.run(main)
"""


async def test_turn_of_a_process_killed_while_holding_it_is_free_again(audit_url: str) -> None:
    """``kill -9`` of the process with the turn never leaves the others without one (the
    kernel drops its ``flock``; PostgreSQL its connection's advisory lock)."""
    audit = await open_audit_store(audit_url, key=KEY)
    try:
        with anyio.fail_after(30):
            argv = [sys.executable, "-c", _HOLDER, audit_url]
            async with await anyio.open_process(argv) as process:
                assert process.stdout is not None
                line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 100)
                assert line == b"held"
                async with audit.seal_turn() as mine:
                    assert not mine
                process.kill()
                await process.wait()
            while True:  # PostgreSQL ends the session once it reads the closed socket
                async with audit.seal_turn() as mine:
                    if mine:
                        break
                await anyio.sleep(0.05)
    finally:
        await audit.aclose()


async def test_a_log_in_memory_always_gives_the_turn() -> None:
    """Only its own process can reach it."""
    audit = await open_audit_store("memory://", key=KEY)
    try:
        async with audit.seal_turn() as mine, audit.seal_turn() as again:
            assert mine
            assert again
    finally:
        await audit.aclose()


async def test_a_sealer_without_the_turn_skips_and_the_one_with_it_seals_every_record(
    two_logs: tuple[AuditBackend, AuditBackend],
) -> None:
    first, second = two_logs
    store = await outbox_of(5)
    sealer = Sealer(store, first)

    async with second.seal_turn():
        assert await sealer.drain_in_turn() is None
        assert await logged(first) == 0
        assert len(await store.pending_events(limit=10)) == 5  # left for the turn's holder

    other = Sealer(store, second)
    assert await other.drain_in_turn() == 5
    assert await logged(first) == 5
    assert await store.pending_events(limit=10) == []


async def test_a_readers_drain_seals_while_another_process_has_the_turn(
    two_logs: tuple[AuditBackend, AuditBackend],
) -> None:
    """An audit query seals first so that it shows every action before it: never skipped."""
    first, second = two_logs
    store = await outbox_of(3)

    async with second.seal_turn():
        assert await Sealer(store, first).drain() == 3

    assert await logged(second) == 3


async def test_the_background_run_waits_out_another_process_turn_then_seals(
    two_logs: tuple[AuditBackend, AuditBackend],
) -> None:
    first, second = two_logs
    store = await outbox_of(4)
    sealer = Sealer(store, first, gap=0.01)

    async with anyio.create_task_group() as group:
        async with second.seal_turn():
            group.start_soon(sealer.run, 0.02)
            await anyio.sleep(0.2)  # several beats, each skipped
            assert await logged(first) == 0
            assert not sealer.failing
        with anyio.fail_after(5):
            while await logged(first) < 4:  # noqa: ASYNC110 - nothing signals a seal
                await anyio.sleep(0.02)
        group.cancel_scope.cancel()
    assert not sealer.failing
