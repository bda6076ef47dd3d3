"""SqliteWorker: whole units of work on one connection, one after another, on one thread."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from burnlink.store.sqlite import worker as worker_module
from burnlink.store.sqlite.checkpoints import Checkpointer
from burnlink.store.sqlite.worker import (
    SqliteWorker,
    WorkerClosed,
    immediate_transaction,
    insert_rows,
)

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


# -- group commit ------------------------------------------------------------------------------


@asynccontextmanager
async def held_thread(worker: SqliteWorker) -> AsyncIterator[None]:
    """Keep the worker's thread busy until the block ends, so grouped units queue up and are
    taken together when it is free."""
    entered, release = threading.Event(), threading.Event()

    def hold(db: sqlite3.Connection) -> None:
        entered.set()
        release.wait(timeout=10)

    holder = asyncio.create_task(worker.run(hold))
    await asyncio.to_thread(entered.wait, 10)
    try:
        yield
    finally:
        release.set()
        await holder


def _insert(n: int, db: sqlite3.Connection) -> int:
    db.execute("INSERT INTO t VALUES (?)", (n,))
    return n


def _insert_then_fail(n: int, db: sqlite3.Connection) -> int:
    db.execute("INSERT INTO t VALUES (?)", (n,))
    raise ValueError("refused after writing")


async def _worker_with_table(tmp_path: Path) -> SqliteWorker:
    worker = await SqliteWorker.open(str(tmp_path / "g.db"), busy_timeout=TIMEOUT, name="g")
    await worker.run(lambda db: db.execute("CREATE TABLE t (n INTEGER)"))
    return worker


async def _rows(worker: SqliteWorker) -> list[int]:
    rows = await worker.run(lambda db: db.execute("SELECT n FROM t ORDER BY n").fetchall())
    return [n for (n,) in rows]


async def test_a_grouped_unit_that_fails_is_undone_alone(tmp_path: Path) -> None:
    worker = await _worker_with_table(tmp_path)
    async with held_thread(worker):
        calls = [
            asyncio.ensure_future(
                worker.run(partial(_insert_then_fail if n == 2 else _insert, n), grouped=True)
            )
            for n in range(5)
        ]
        await asyncio.sleep(0.01)
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    assert [o if isinstance(o, int) else type(o) for o in outcomes] == [0, 1, ValueError, 3, 4]
    assert await _rows(worker) == [0, 1, 3, 4]
    await worker.aclose()


async def test_a_group_whose_units_all_succeed_runs_them_without_savepoints_of_their_own(
    tmp_path: Path,
) -> None:
    """Savepoints cost two statements a unit: a group takes one savepoint of its own, and one
    per unit only when a unit fails; it then rolls back to its own savepoint, keeping its
    transaction (no second ``BEGIN``: nothing waits for the write lock again), and every unit
    runs again inside its own, each row kept once."""
    worker = await _worker_with_table(tmp_path)
    statements: list[str] = []
    await worker.run(lambda db: db.set_trace_callback(statements.append))
    for failing in (None, 1):
        async with held_thread(worker):
            calls = [
                asyncio.ensure_future(
                    worker.run(
                        partial(_insert_then_fail if n == failing else _insert, 10 * n + 5),
                        grouped=True,
                    )
                )
                for n in range(3)
            ]
            await asyncio.sleep(0.01)
        await asyncio.gather(*calls, return_exceptions=True)
        if failing is None:
            assert [s for s in statements if "SAVEPOINT" in s] == ["SAVEPOINT grouped"]
            assert statements.count("COMMIT") == 1
            statements.clear()
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
    rollbacks = [s for s in statements if s.startswith("ROLLBACK")]
    assert rollbacks == ["ROLLBACK TO grouped", "ROLLBACK TO unit"]
    savepoints = [s for s in statements if s.startswith("SAVEPOINT")]
    assert savepoints == ["SAVEPOINT grouped"] + ["SAVEPOINT unit"] * 3
    assert statements.count("COMMIT") == 1
    assert await _rows(worker) == [5, 5, 15, 25, 25]  # the second group kept 5 and 25 once
    await worker.aclose()


async def test_units_grouped_together_commit_together_or_not_at_all(tmp_path: Path) -> None:
    """A ``COMMIT`` that fails (here a deferred foreign key, checked at commit) fails every
    unit of its group, and none of their rows is kept: they were one transaction."""
    worker = await _worker_with_table(tmp_path)

    def schema(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        db.execute(
            "CREATE TABLE child (parent INTEGER"
            " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )

    def orphan(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO child VALUES (42)")

    await worker.run(schema)
    async with held_thread(worker):
        calls = [
            asyncio.ensure_future(worker.run(work, grouped=True))
            for work in (partial(_insert, 1), orphan, partial(_insert, 2))
        ]
        await asyncio.sleep(0.01)
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    assert all(isinstance(o, sqlite3.IntegrityError) for o in outcomes)
    assert await _rows(worker) == []
    assert await worker.run(lambda db: db.in_transaction) is False
    await worker.aclose()


async def test_a_group_rolled_back_by_sqlite_fails_every_unit(tmp_path: Path) -> None:
    """When SQLite ends the transaction itself (as it does on a full disk or an I/O error),
    the units that ran before the failing one lose their changes too, and say so."""
    worker = await _worker_with_table(tmp_path)

    def rolled_back(db: sqlite3.Connection) -> None:
        db.execute("ROLLBACK")  # what SQLite does by itself on SQLITE_FULL or SQLITE_IOERR
        raise sqlite3.OperationalError("database or disk is full")

    async with held_thread(worker):
        calls = [
            asyncio.ensure_future(worker.run(work, grouped=True))
            for work in (partial(_insert, 1), rolled_back, partial(_insert, 2))
        ]
        await asyncio.sleep(0.01)
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    assert all(isinstance(o, sqlite3.OperationalError) for o in outcomes)
    assert await _rows(worker) == []
    await worker.aclose()


async def test_units_queued_while_another_process_writes_join_one_group(tmp_path: Path) -> None:
    """A group is taken once its thread holds the file's writer lock: units that queue while
    another writer has the turn commit together with the one already waiting, in one
    transaction, instead of each waiting for a turn of its own."""
    statements: list[str] = []
    locked = lock_held_by_another_worker(str(tmp_path / "g.db"), busy_timeout=TEN_SECONDS)
    async with locked as (worker, release):
        # Neither needs the writer lock: the other worker holds it, not SQLite's own.
        await worker.run(lambda db: db.execute("CREATE TABLE t (n INTEGER)"))
        await worker.run(lambda db: db.set_trace_callback(statements.append))
        first = asyncio.ensure_future(worker.run(partial(_insert, 1), grouped=True))
        await asyncio.sleep(0.05)  # the worker's thread is now waiting for the turn
        later = [
            asyncio.ensure_future(worker.run(partial(_insert, n), grouped=True)) for n in (2, 3)
        ]
        await asyncio.sleep(0.05)
        release.set()

        assert await asyncio.gather(first, *later) == [1, 2, 3]
        assert await _rows(worker) == [1, 2, 3]
    assert statements.count("COMMIT") == 1


async def test_a_writer_lock_that_fails_fails_its_group_and_the_next_group_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock file the kernel refuses to lock (``ENOLCK``) fails the units waiting for it with
    that error; the worker is not left stuck, and once the lock works again so do writes."""
    worker = await _worker_with_table(tmp_path)

    def refused(fd: int, operation: int) -> None:
        if operation & fcntl.LOCK_EX:
            raise OSError(errno.ENOLCK, "No locks available")
        real_flock(fd, operation)

    real_flock = fcntl.flock
    monkeypatch.setattr(fcntl, "flock", refused)
    with pytest.raises(OSError, match="No locks available"):
        await asyncio.wait_for(worker.run(partial(_insert, 1), grouped=True), 5)
    monkeypatch.undo()

    assert await asyncio.wait_for(worker.run(partial(_insert, 2), grouped=True), 5) == 2
    assert await _rows(worker) == [2]
    await worker.aclose()


async def test_a_group_runs_on_the_event_loop_unless_it_must_wait_which_the_loop_never_does(
    tmp_path: Path,
) -> None:
    """With the writer lock free and the worker's thread idle, a group runs on the event
    loop's own thread (no GIL hand-over per statement); when another worker holds the lock,
    the group waits for it on the worker's thread while the loop goes on running."""
    loop_thread = threading.get_ident()

    def where(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO t VALUES (1)")
        return threading.get_ident()

    worker = await _worker_with_table(tmp_path)
    assert await worker.run(where, grouped=True) == loop_thread
    await worker.aclose()

    locked = lock_held_by_another_worker(str(tmp_path / "w.db"), busy_timeout=TEN_SECONDS)
    async with locked as (second, release):
        await second.run(lambda db: db.execute("CREATE TABLE t (n INTEGER)"))
        waiting = asyncio.ensure_future(second.run(where, grouped=True))
        # Were the loop blocked waiting for the lock, the release below could never run:
        # the group would fail after the busy timeout instead of still waiting here.
        await asyncio.sleep(0.1)
        assert not waiting.done()
        release.set()
        assert await waiting != loop_thread


async def test_a_group_that_fails_past_its_commit_fails_every_caller_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever escapes the group's transaction reaches every caller of it as their error,
    on the event loop's path as on the thread's; nothing is kept, and later groups run."""
    worker = await _worker_with_table(tmp_path)

    def broken(db: sqlite3.Connection, units: object, *, begun: bool = False) -> None:
        db.execute("INSERT INTO t VALUES (99)")
        raise RuntimeError("the driver broke")

    monkeypatch.setattr(worker_module, "_commit_group", broken)
    calls = [worker.run(partial(_insert, n), grouped=True) for n in range(3)]
    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
    monkeypatch.undo()

    assert [type(o) for o in outcomes] == [RuntimeError] * 3
    assert await worker.run(partial(_insert, 7), grouped=True) == 7
    assert await _rows(worker) == [7]
    await worker.aclose()


async def test_a_grouped_unit_cancelled_before_it_starts_never_runs(tmp_path: Path) -> None:
    worker = await _worker_with_table(tmp_path)
    async with held_thread(worker):
        dropped = asyncio.ensure_future(worker.run(partial(_insert, 1), grouped=True))
        kept = asyncio.ensure_future(worker.run(partial(_insert, 2), grouped=True))
        await asyncio.sleep(0.01)
        dropped.cancel()
        await asyncio.sleep(0.01)  # the cancellation reaches the caller before the thread is free
    assert await kept == 2
    assert dropped.cancelled()
    assert await _rows(worker) == [2]
    await worker.aclose()


async def test_immediate_transaction_in_a_grouped_unit_is_its_savepoint(tmp_path: Path) -> None:
    worker = await _worker_with_table(tmp_path)

    def in_transaction(n: int, fail: bool, db: sqlite3.Connection) -> int:
        with immediate_transaction(db):  # would raise if it began a second transaction
            db.execute("INSERT INTO t VALUES (?)", (n,))
            if fail:
                raise ValueError("undo this unit")
        return n

    async with held_thread(worker):
        calls = [
            asyncio.ensure_future(worker.run(partial(in_transaction, n, n == 1), grouped=True))
            for n in range(3)
        ]
        await asyncio.sleep(0.01)
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    assert [o if isinstance(o, int) else type(o) for o in outcomes] == [0, ValueError, 2]
    assert await _rows(worker) == [0, 2]
    await worker.aclose()


def test_insert_rows_keeps_every_row_in_order_in_statements_sqlite_allows() -> None:
    """Rows go in a few statements of a power of two of rows each, within the limit on
    parameters (here 7: two rows of three), values of every type intact and in order."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("CREATE TABLE t (n INTEGER, name TEXT, data BLOB)")
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 7)
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    rows = [(n, f"row {n}" if n % 3 else None, bytes([n]) * n) for n in range(9)]

    insert_rows(db, "INSERT INTO t (n, name, data) VALUES", rows)

    db.set_trace_callback(None)
    assert db.execute("SELECT n, name, data FROM t ORDER BY rowid").fetchall() == rows
    assert len(statements) == 5
    insert_rows(db, "INSERT INTO t (n, name, data) VALUES", [])  # nothing to insert: no statement


async def test_a_transaction_runs_on_the_event_loop_unless_it_must_wait_which_the_loop_never_does(
    tmp_path: Path,
) -> None:
    """As a group: with nothing to wait for, ``transaction`` runs on the loop's thread and
    commits; when another worker holds the writer lock, it waits on the worker's thread while
    the loop goes on, then commits there."""
    loop_thread = threading.get_ident()

    def where(db: sqlite3.Connection) -> int:
        assert db.in_transaction  # opened for it
        db.execute("INSERT INTO t VALUES (1)")
        return threading.get_ident()

    worker = await _worker_with_table(tmp_path)
    assert await worker.transaction(where) == loop_thread
    assert not await worker.run(lambda db: db.in_transaction)
    assert await worker.run(lambda db: db.execute("SELECT count(*) FROM t").fetchone()) == (1,)
    await worker.aclose()

    locked = lock_held_by_another_worker(str(tmp_path / "w.db"), busy_timeout=TEN_SECONDS)
    async with locked as (second, release):
        await second.run(lambda db: db.execute("CREATE TABLE t (n INTEGER)"))
        waiting = asyncio.ensure_future(second.transaction(where))
        # Were the loop blocked waiting for the lock, the release below could never run.
        await asyncio.sleep(0.1)
        assert not waiting.done()
        release.set()
        assert await waiting != loop_thread
        count = await second.run(lambda db: db.execute("SELECT count(*) FROM t").fetchone())
    assert count == (1,)


@pytest.mark.parametrize("on_the_loop", [True, False])
async def test_a_transaction_that_raises_keeps_nothing_and_leaves_no_transaction_open(
    tmp_path: Path, on_the_loop: bool
) -> None:
    worker = await _worker_with_table(tmp_path)
    busy = threading.Event()
    if not on_the_loop:  # the worker's thread busy: the transaction queues behind it
        blocker = asyncio.ensure_future(worker.run(lambda db: busy.wait(10)))
        await asyncio.sleep(0.05)

    def fails(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES (1)")
        raise ValueError("no")

    attempt = asyncio.ensure_future(worker.transaction(fails))
    if not on_the_loop:
        busy.set()
        await blocker
    with pytest.raises(ValueError, match="no"):
        await attempt
    assert not await worker.run(lambda db: db.in_transaction)
    assert await worker.run(lambda db: db.execute("SELECT count(*) FROM t").fetchone()) == (0,)
    await worker.aclose()


async def test_a_read_runs_on_the_loop_and_goes_to_the_thread_when_sqlite_would_wait(
    tmp_path: Path,
) -> None:
    """A read runs on the loop's thread; one that finds SQLite's lock taken (here another
    connection holds the file exclusively) runs again on the worker's thread, which waits for
    it, instead of failing or waiting on the loop."""
    loop_thread = threading.get_ident()
    worker = await _worker_with_table(tmp_path)
    await worker.run(lambda db: db.execute("INSERT INTO t VALUES (7)"), writes=True)

    def read(db: sqlite3.Connection) -> tuple[int, list[tuple[int]]]:
        return threading.get_ident(), db.execute("SELECT n FROM t").fetchall()

    assert await worker.read(read) == (loop_thread, [(7,)])

    other = sqlite3.connect(tmp_path / "g.db", isolation_level=None, check_same_thread=False)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("INSERT INTO t VALUES (8)")
    waiting = asyncio.ensure_future(worker.read(read))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    other.execute("COMMIT")
    other.close()  # lets go of the exclusive lock
    thread, rows = await waiting
    assert thread != loop_thread
    assert sorted(rows) == [(7,), (8,)]
    # The loop's read set no busy timeout; the connection's own is back for everyone else.
    assert await worker.run(lambda db: db.execute("PRAGMA busy_timeout").fetchone()) == (
        int(TIMEOUT.total_seconds() * 1000),
    )
    await worker.aclose()


PAGE_FILLER = b"x" * 3000
"""A row that fills most of a 4 KiB page: each insert adds about a page to the log."""


async def _wal_worker(tmp_path: Path, every: float) -> SqliteWorker:
    worker = await SqliteWorker.open(
        str(tmp_path / "wal.db"), busy_timeout=TIMEOUT, name="test", checkpoint_every=every
    )
    await worker.run(lambda db: db.execute("PRAGMA journal_mode = WAL").fetchall())
    await worker.run(lambda db: db.execute("CREATE TABLE t (b BLOB)"), writes=True)
    return worker


def _fill(db: sqlite3.Connection) -> None:
    db.executemany("INSERT INTO t VALUES (?)", [(PAGE_FILLER,)] * 100)


async def test_a_commit_never_checkpoints_the_log_on_the_event_loop(tmp_path: Path) -> None:
    """SQLite's own rule would copy the log into the file in the commit that takes it past
    1,000 pages, on the event loop when the transaction runs there; the worker's connection
    leaves that to its checkpointer (here: not before an hour)."""
    worker = await _wal_worker(tmp_path, every=3600.0)
    for _ in range(15):  # about 1,500 pages, each transaction on the loop
        await worker.transaction(_fill)
    database = tmp_path / "wal.db"

    assert database.stat().st_size < 100 * 4096  # nothing was copied back
    assert (tmp_path / "wal.db-wal").stat().st_size > 1_400 * 4096  # and the log kept it all
    await worker.aclose()


async def test_the_checkpointer_copies_the_log_into_the_file_on_its_own_thread(
    tmp_path: Path,
) -> None:
    """Asked on each unit of work (here at once), it checkpoints on a thread of its own while
    the worker goes on; the file then holds what the log held."""
    worker = await _wal_worker(tmp_path, every=0.0)
    threads: set[str] = set()
    original = Checkpointer._checkpoint

    def noted(self: Checkpointer) -> None:
        threads.add(threading.current_thread().name)
        original(self)

    database = tmp_path / "wal.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Checkpointer, "_checkpoint", noted)
        for _ in range(15):
            await worker.transaction(_fill)
        for _ in range(100):
            await worker.read(lambda db: db.execute("SELECT 1").fetchall())
            await worker.run(lambda db: None)  # asks again
            if database.stat().st_size > 1_400 * 4096:
                break
            await asyncio.sleep(0.05)

    assert database.stat().st_size > 1_400 * 4096
    assert threads == {"test-checkpoint_0"}
    assert await worker.run(lambda db: db.execute("SELECT count(*) FROM t").fetchone()) == (1500,)
    await worker.aclose()


def _checkpoint_now(path: Path) -> None:
    checkpointer = Checkpointer(str(path), name="test", every=0.0)
    checkpointer.ask()
    checkpointer.close()  # waits for it


def test_a_checkpoint_that_meets_another_connections_lock_warns_of_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With several worker processes one file has several checkpointers: one that finds the
    file locked tries again later, quietly. A file it cannot open at all is worth a warning,
    and the checkpoint does not make it again, empty."""
    path = tmp_path / "locked.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("CREATE TABLE t (n INTEGER)")
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("INSERT INTO t VALUES (1)")
    with caplog.at_level("WARNING", logger="burnlink.store"):
        _checkpoint_now(path)
        assert caplog.records == []
        other.execute("COMMIT")
        other.close()

        gone = tmp_path / "gone.db"
        _checkpoint_now(gone)
    assert [r.getMessage() for r in caplog.records] == [
        "SQLite WAL checkpoint failed (SQLITE_CANTOPEN); tried again later"
    ]
    assert not gone.exists()
