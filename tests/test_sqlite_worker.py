"""SqliteWorker: whole units of work on one connection, one after another, on one thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from burnlink.sqlite_worker import SqliteWorker, WorkerClosed

pytestmark = pytest.mark.anyio

TIMEOUT = timedelta(seconds=1)


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
