"""SqliteWorker: whole units of work on one connection, one after another, on one thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from burnlink.store.sqlite.worker import SqliteWorker, WorkerClosed

pytestmark = pytest.mark.anyio

TIMEOUT = timedelta(seconds=1)
TEN_SECONDS = timedelta(seconds=10)


async def test_units_of_work_run_on_one_thread_and_never_interleave(tmp_path: Path) -> None:
    worker = await SqliteWorker.open(str(tmp_path / "w.db"), busy_timeout=TIMEOUT, name="test")
    await worker.run(lambda db: db.execute("CREATE TABLE t (n INTEGER)"))
    threads: set[int] = set()

    def transaction(n: int, db: sqlite3.Connection) -> None:
        threads.add(threading.get_ident())
        db.execute("BEGIN IMMEDIATE")  # would fail if another unit's transaction were open
        db.execute("INSERT INTO t VALUES (?)", (n,))
        db.execute("COMMIT")

    await asyncio.gather(*(worker.run(partial(transaction, n)) for n in range(50)))

    rows = await worker.run(lambda db: db.execute("SELECT n FROM t ORDER BY n").fetchall())
    assert [n for (n,) in rows] == list(range(50))
    assert len(threads) == 1
    assert threading.get_ident() not in threads
    await worker.aclose()


async def test_errors_reach_the_caller_and_the_connection_stays_usable() -> None:
    worker = await SqliteWorker.open(":memory:", busy_timeout=TIMEOUT, name="test")

    with pytest.raises(sqlite3.OperationalError):
        await worker.run(lambda db: db.execute("SELECT * FROM missing"))

    assert await worker.run(lambda db: db.execute("SELECT 1").fetchone()) == (1,)
    await worker.aclose()


async def test_a_closed_worker_refuses_work() -> None:
    worker = await SqliteWorker.open(":memory:", busy_timeout=TIMEOUT, name="test")
    await worker.aclose()
    await worker.aclose()  # twice is fine

    assert worker.closed
    with pytest.raises(WorkerClosed):
        await worker.run(lambda db: db.execute("SELECT 1"))


@asynccontextmanager
async def lock_held_by_another_worker(
    file: str, *, busy_timeout: timedelta
) -> AsyncIterator[tuple[SqliteWorker, threading.Event]]:
    """A second worker on ``file`` (with ``busy_timeout``) while a first one holds the file's
    writer lock inside a unit of work, until the yielded event is set."""
    first = await SqliteWorker.open(file, busy_timeout=timedelta(seconds=10), name="a")
    second = await SqliteWorker.open(file, busy_timeout=busy_timeout, name="b")
    entered, release = threading.Event(), threading.Event()

    def hold(db: sqlite3.Connection) -> None:
        entered.set()
        release.wait(timeout=10)

    holder = asyncio.create_task(first.run(hold, writes=True))
    await asyncio.to_thread(entered.wait, 10)
    try:
        yield second, release
    finally:
        release.set()
        await holder
        await first.aclose()
        await second.aclose()


async def test_writers_of_one_file_take_turns_through_its_lock(tmp_path: Path) -> None:
    order: list[str] = []
    locked = lock_held_by_another_worker(str(tmp_path / "w.db"), busy_timeout=TEN_SECONDS)
    async with locked as (second, release):
        waiter = asyncio.create_task(second.run(lambda db: order.append("second"), writes=True))
        # A reader never waits for the writer lock.
        assert await second.run(lambda db: db.execute("SELECT 1").fetchone()) == (1,)
        await asyncio.sleep(0.05)
        assert order == []
        order.append("first done")
        release.set()
        await waiter

    assert order == ["first done", "second"]
    assert (tmp_path / "w.db-lock").stat().st_mode & 0o777 == 0o600


async def test_a_writer_gives_up_on_a_held_lock_after_the_busy_timeout(tmp_path: Path) -> None:
    short = timedelta(milliseconds=100)
    async with lock_held_by_another_worker(str(tmp_path / "w.db"), busy_timeout=short) as (
        second,
        release,
    ):
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            await second.run(lambda db: None, writes=True)
        release.set()
        assert await second.run(lambda db: "written", writes=True) == "written"


async def test_a_database_in_memory_has_no_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    worker = await SqliteWorker.open(":memory:", busy_timeout=TIMEOUT, name="test")
    assert await worker.run(lambda db: 1, writes=True) == 1
    await worker.aclose()
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []
