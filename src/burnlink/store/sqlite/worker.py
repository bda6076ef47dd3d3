"""One SQLite connection on a thread of its own, handed whole units of work by coroutines.

``sqlite3`` blocks, so async code must call it from another thread. Handing over each
statement (as aiosqlite does) costs a thread switch per statement: a transaction of six
statements waits for the event loop and the worker thread six times. ``SqliteWorker`` takes a
plain function of the connection instead (``run``), so a whole transaction is one hand-over,
and since one thread runs the functions one after another, no two units of work ever
interleave on the connection.

A unit of work that has started runs to its end even if the awaiting coroutine is cancelled
(one that has not started is dropped), so a transaction is never left half done on the
connection.

Processes that write one file take turns through ``WriterLock`` (``run(..., writes=True)``)
before SQLite's own write lock, in the order they asked (``writer_lock``), instead of
SQLite's sleeping retries.

Group commit (``run(..., grouped=True)``). With ``synchronous=FULL`` every ``COMMIT`` waits
for the disk (an ``fsync`` of the write-ahead log, about 2.5 ms on the machine the benchmark
runs on), and the writer lock is held meanwhile, so one write transaction per request capped
a server at a few hundred requests a second whatever its CPUs. Grouped units that are waiting
once the thread holds the writer lock run in one transaction instead, and share one
``COMMIT``:

- a unit that raises is undone alone and gets its exception; the others go on (the group
  then runs again, each unit inside a ``SAVEPOINT`` of its own: see ``_commit_group``);
- no unit's caller hears of its result before the ``COMMIT`` has succeeded; if it fails, or an
  error rolls the whole transaction back, every unit of the group gets the error and none of
  their changes is kept;
- ``immediate_transaction`` inside a grouped unit opens no transaction of its own.

No unit waits for a group to fill: the thread takes whatever has queued by the time it holds
the writer lock (at most ``GROUP_LIMIT``), so a group gathers what arrived while the previous
one committed and while another process had its turn. A unit that must run alone (one that
checkpoints the log, which no transaction may be open for) is not grouped.

Where a group runs. ``sqlite3`` lets go of the GIL for every statement, and on the worker's
thread each statement then waits to take it back from the event loop. So when nothing has to
wait for it (the worker's thread is idle, the writer lock and SQLite's own lock are free right
now), the event loop runs the group itself, at the end of the loop turn in which its first
unit arrived; otherwise the group goes to the worker's thread, which does the waiting. The
loop never waits for a lock. The two threads use the connection one at a time (``_use``).
A commit never checkpoints the write-ahead log, which would hold the loop while it copies the
log into the file: a ``Checkpointer`` of the worker does that on a thread and connection of
its own (``burnlink.store.sqlite.checkpoints``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from burnlink.store.sqlite.checkpoints import CHECKPOINT_EVERY, Checkpointer
from burnlink.store.sqlite.writer_lock import WriterLock

__all__ = [
    "GROUP_LIMIT",
    "SqliteWorker",
    "WorkerClosed",
    "error_name",
    "immediate_transaction",
    "insert_rows",
]

T = TypeVar("T")


def error_name(exc: sqlite3.Error) -> str:
    """A short, content-free name for a driver error (``SQLITE_BUSY``, ``SQLITE_FULL``, …)."""
    name = getattr(exc, "sqlite_errorname", None)
    return name if isinstance(name, str) else type(exc).__name__


class WorkerClosed(Exception):
    """Raised by ``SqliteWorker.run`` after ``aclose``."""


GROUP_LIMIT: Final = 64
"""Grouped units committed together at most."""


@dataclass(eq=False)
class _Unit:
    """A grouped unit of work waiting for the thread, and where its outcome goes."""

    work: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    dropped: bool = False
    """Its caller stopped waiting before it started: skip it."""
    outcome: tuple[Any, BaseException | None] = field(default=(None, None))


class SqliteWorker:
    """A ``sqlite3.Connection`` in autocommit mode, used only from its own thread."""

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        connection: sqlite3.Connection,
        writer_lock: WriterLock | None = None,
        *,
        busy_timeout: timedelta = timedelta(seconds=5),
        checkpointer: Checkpointer | None = None,
    ) -> None:
        """Wrap an open connection (opened with ``busy_timeout``); use ``SqliteWorker.open``
        instead."""
        self._executor = executor
        self._checkpointer = checkpointer
        self._busy_ms = int(busy_timeout.total_seconds() * 1000)
        self._connection: sqlite3.Connection | None = connection
        self._writer_lock = writer_lock
        self._queued: list[_Unit] = []
        self._queue_lock = threading.Lock()
        self._flush_queued = False
        self._use = threading.Lock()
        """Held by the thread using the connection: the worker's own, or the event loop's
        while it runs a group itself (``_flush_here``)."""

    @classmethod
    async def open(
        cls,
        target: str,
        *,
        busy_timeout: timedelta,
        name: str,
        read_only: bool = False,
        checkpoint_every: float = CHECKPOINT_EVERY,
    ) -> SqliteWorker:
        """Connect to ``target`` (a path or ``:memory:``) on a new thread called ``name``;
        a file gets its ``WriterLock``, and its write-ahead log is checkpointed by a
        ``Checkpointer`` (at most every ``checkpoint_every`` seconds), never by a commit of
        this connection (``burnlink.store.sqlite.checkpoints``).

        ``read_only`` opens an existing file with ``mode=ro``: nothing (not even the file or
        its lock file) is created, and every write fails. Raises ``sqlite3.Error`` when the
        database cannot be opened, ``OSError`` when its lock file cannot.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        writes_file = target != ":memory:" and not read_only

        def connect() -> tuple[sqlite3.Connection, WriterLock | None]:
            lock = None
            if writes_file:
                lock = WriterLock.beside(target, timeout=busy_timeout)
            try:
                connection = sqlite3.connect(
                    f"{Path(target).expanduser().absolute().as_uri()}?mode=ro"
                    if read_only
                    else target,
                    timeout=busy_timeout.total_seconds(),
                    isolation_level=None,
                    uri=read_only,
                    # Used from the worker's thread and, for a group, the event loop's, one
                    # at a time (``_use``).
                    check_same_thread=False,
                )
                if writes_file:
                    connection.execute("PRAGMA wal_autocheckpoint = 0")
            except BaseException:
                if lock is not None:
                    lock.close()
                raise
            return connection, lock

        try:
            loop = asyncio.get_running_loop()
            connection, lock = await loop.run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        checkpointer = (
            Checkpointer(target, name=name, every=checkpoint_every) if writes_file else None
        )
        return cls(executor, connection, lock, busy_timeout=busy_timeout, checkpointer=checkpointer)

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called."""
        return self._connection is None

    async def run(
        self,
        work: Callable[[sqlite3.Connection], T],
        *,
        writes: bool = False,
        grouped: bool = False,
    ) -> T:
        """``work(connection)`` on the worker thread; its result or its exception.

        ``writes``: ``work`` writes, so it runs holding the file's ``WriterLock``.
        ``grouped``: ``work`` writes and may share its transaction and ``COMMIT`` with other
        grouped units (see the module docstring); its result comes once that has committed.
        """
        connection = self._connection
        if connection is None:
            raise WorkerClosed
        if self._checkpointer is not None:
            self._checkpointer.ask()
        loop = asyncio.get_running_loop()
        if grouped:
            return await self._grouped(loop, connection, work)  # type: ignore[no-any-return]
        lock = self._writer_lock if writes else None
        return await loop.run_in_executor(self._executor, _using, self._use, lock, work, connection)

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` in a write transaction of its own (``BEGIN IMMEDIATE`` …
        ``COMMIT``, rolled back if ``work`` or the ``COMMIT`` raises), holding the writer lock;
        its result or its exception. ``work`` opens no transaction itself.

        Run where a group runs (see the module docstring): on the event loop, at once, when
        nothing has to wait for it (the worker's thread idle, the writer lock and SQLite's
        own lock free right now), else on the worker's thread. For a large unit that comes
        seldom, such as the audit log's seal of a batch: on the thread, each of its
        statements would take the GIL back from a busy event loop."""
        connection = self._connection
        if connection is None:
            raise WorkerClosed
        if self._checkpointer is not None:
            self._checkpointer.ask()
        if self._use.acquire(blocking=False):
            try:
                here = self._transaction_here(connection, work)
            finally:
                self._use.release()
            if here:
                return here[0]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, _using, self._use, self._writer_lock, _in_transaction(work), connection
        )

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)``, which only reads; its result or its exception. On the event
        loop when the worker's thread is idle and SQLite answers without waiting (a read that
        would wait for a lock goes to the thread and runs again there), else on the thread.

        For a read of many rows: on the thread, each row is a step that takes the GIL back
        from the event loop."""
        connection = self._connection
        if connection is None:
            raise WorkerClosed
        if self._use.acquire(blocking=False):
            try:
                connection.execute("PRAGMA busy_timeout = 0")
                try:
                    return work(connection)
                except sqlite3.OperationalError as exc:
                    if error_name(exc) not in _WOULD_WAIT:
                        raise
                finally:
                    connection.execute(f"PRAGMA busy_timeout = {self._busy_ms:d}")
            finally:
                self._use.release()
        return await self.run(work)

    def _transaction_here(
        self, connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]
    ) -> list[T]:
        """``transaction``'s run on the loop, holding ``_use``: ``[result]``, or ``[]`` when a
        lock is taken and the unit must go to the thread."""
        lock = self._writer_lock
        if lock is not None and not _taken_now(lock):
            return []
        try:
            if not _begin_without_waiting(connection, self._busy_ms):
                return []
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
            return [result]
        finally:
            if lock is not None:
                with suppress(OSError):  # the transaction's outcome stands either way
                    lock.__exit__(None, None, None)

    async def _grouped(
        self,
        loop: asyncio.AbstractEventLoop,
        connection: sqlite3.Connection,
        work: Callable[[sqlite3.Connection], Any],
    ) -> Any:
        unit = _Unit(work, loop.create_future())
        with self._queue_lock:
            self._queued.append(unit)
            start = not self._flush_queued
            self._flush_queued = True
        if start:
            loop.call_soon(self._flush_here, loop, connection)
        try:
            return await unit.future
        except asyncio.CancelledError:
            unit.dropped = True  # read by the thread before it starts the unit
            raise

    def _flush(self, loop: asyncio.AbstractEventLoop, connection: sqlite3.Connection) -> None:
        """On the thread: take the file's writer lock, then run the units queued by then (up
        to ``GROUP_LIMIT``) as one transaction, and hand every outcome back to the loop in one
        call.

        The units are taken once the lock is held, not before: those that queued while the
        thread waited for another process's turn join this group instead of waiting for a
        turn of their own."""
        lock = self._writer_lock
        units: list[_Unit] = []
        ran = False
        try:
            with self._use, nullcontext() if lock is None else lock:
                units = self._take(loop, connection)
                if units:
                    _commit_group(connection, units)
                ran = True
        except Exception as exc:  # noqa: BLE001 - handed to the waiting callers
            # The lock was never had (it timed out, or its file failed), so no unit ran: the
            # queued ones get the error, and the queue is not left waiting for a flush. (Once
            # the group has run, only letting go of the lock can fail: its outcomes stand.)
            if not ran:
                units = units or self._take(loop, connection)
                for unit in units:
                    unit.outcome = (None, exc)
        if units:
            with suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, units)

    def _flush_here(self, loop: asyncio.AbstractEventLoop, connection: sqlite3.Connection) -> None:
        """On the event loop: run the queued group here if nothing has to wait for it (the
        worker's thread is idle and the writer lock is free), else on the worker's thread
        (``_flush``).

        Every statement on the worker's thread lets go of the GIL and takes it back from the
        event loop, a hand-over each; here there are none. What waits (the writer lock,
        another process's turn) still waits on the worker's thread, never on the loop."""
        if self._connection is None or not self._use.acquire(blocking=False):
            self._flush_elsewhere(loop, connection)
            return
        lock = self._writer_lock
        units: list[_Unit] = []
        try:
            if lock is not None and not _taken_now(lock):
                self._flush_elsewhere(loop, connection)
                return
            try:
                # Another program may hold SQLite's own lock without ours (the sqlite3
                # shell, a backup): SQLite would wait for it here, on the loop.
                if not _begin_without_waiting(connection, self._busy_ms):
                    self._flush_elsewhere(loop, connection)
                    return
                units = self._take(loop, connection)
                try:
                    if units:
                        _commit_group(connection, units, begun=True)
                    else:  # every caller went away before its unit started
                        connection.execute("ROLLBACK")
                except Exception as exc:  # noqa: BLE001 - handed to the waiting callers
                    # Only the driver could raise past ``_commit_group``: as on the thread,
                    # the group fails whole (rolled back) and every caller hears of it.
                    _fail_group(connection, units, None)
                    for unit in units:
                        unit.outcome = (None, exc)
            finally:
                if lock is not None:
                    # Once the group has run, only letting go of the lock can fail: its
                    # outcomes stand (as on the worker's thread).
                    with suppress(OSError):
                        lock.__exit__(None, None, None)
        finally:
            self._use.release()
        if units:
            _settle(units)

    def _flush_elsewhere(
        self, loop: asyncio.AbstractEventLoop, connection: sqlite3.Connection
    ) -> None:
        """Hand the queued group to the worker's thread; after ``aclose``, fail it."""
        try:
            self._executor.submit(self._flush, loop, connection)
        except RuntimeError:  # the executor has shut down: the worker is closed
            units = self._take(loop, connection)
            for unit in units:
                unit.outcome = (None, WorkerClosed())
            _settle(units)

    def _take(self, loop: asyncio.AbstractEventLoop, connection: sqlite3.Connection) -> list[_Unit]:
        """The queued units to run now: at most ``GROUP_LIMIT``, none whose caller has gone;
        any left over get a flush of their own, queued after this one."""
        with self._queue_lock:
            units, self._queued = self._queued[:GROUP_LIMIT], self._queued[GROUP_LIMIT:]
            if self._queued:
                loop.call_soon_threadsafe(self._flush_here, loop, connection)
            else:
                self._flush_queued = False
        return [unit for unit in units if not unit.dropped]

    def writing(self) -> AbstractContextManager[None]:
        """The file's ``WriterLock`` (nothing for ``:memory:``), for work run without
        ``writes`` that writes only after some reading and computing of its own: that part
        then does not hold the lock, and the whole is still one hand-over."""
        return nullcontext() if self._writer_lock is None else self._writer_lock

    async def aclose(self) -> None:
        """Finish queued work, close the connection and stop the thread."""
        connection, self._connection = self._connection, None
        if connection is None:
            return

        lock = self._writer_lock
        checkpointer = self._checkpointer

        def close() -> None:
            if checkpointer is not None:
                checkpointer.close()  # waits for a checkpoint under way
            with self._use, suppress(sqlite3.Error):
                connection.close()
            if lock is not None:
                lock.close()

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, close)
        finally:
            self._executor.shutdown(wait=False)


def _using(
    use: threading.Lock,
    lock: WriterLock | None,
    work: Callable[[sqlite3.Connection], T],
    connection: sqlite3.Connection,
) -> T:
    """On the worker's thread: ``work(connection)`` holding the connection (and ``lock``)."""
    with use, nullcontext() if lock is None else lock:
        return work(connection)


_WOULD_WAIT: Final = frozenset(
    {"SQLITE_BUSY", "SQLITE_BUSY_RECOVERY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_LOCKED"}
)
"""Errors of a read that found a lock taken (with no busy timeout): it runs again on the
thread, which may wait."""


def _in_transaction(
    work: Callable[[sqlite3.Connection], T],
) -> Callable[[sqlite3.Connection], T]:
    """``work`` inside ``immediate_transaction``."""

    def run(db: sqlite3.Connection) -> T:
        with immediate_transaction(db):
            return work(db)

    return run


def _taken_now(lock: WriterLock) -> bool:
    """Whether ``lock`` was free and is now held, without waiting (a lock that fails says no:
    the worker's thread then meets the failure and hands it to the units)."""
    try:
        return lock.try_take()
    except OSError:
        return False


_in_group = threading.local()
"""``db``: the connection whose group transaction this thread is running, if any."""


def _begin_without_waiting(db: sqlite3.Connection, busy_ms: int) -> bool:
    """``BEGIN IMMEDIATE`` if SQLite's write lock is free now; ``False`` (and no transaction)
    if it is not, or if anything failed (the worker's thread then meets it and says so)."""
    try:
        db.execute("PRAGMA busy_timeout = 0")
        try:
            db.execute("BEGIN IMMEDIATE")
        finally:
            db.execute(f"PRAGMA busy_timeout = {busy_ms:d}")
    except sqlite3.Error:
        if db.in_transaction:
            with suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        return False
    return True


def _commit_group(db: sqlite3.Connection, units: list[_Unit], *, begun: bool = False) -> None:
    """Run ``units`` in one transaction and commit; set each unit's outcome (see the module
    docstring).

    The units first run one after another without savepoints of their own: a savepoint
    costs two more statements per unit, and every statement lets go of the GIL and waits to
    take it back from the event loop. Only when a unit raises is the group rolled back to the
    one savepoint it took after ``BEGIN`` and run again, each unit in a savepoint of its own.
    Nothing was kept and no caller has heard of the first run, so the second is as if it
    were the only one; the transaction, and with it SQLite's write lock, is held throughout,
    so nothing has to wait for the lock again (on the event loop's path nothing may wait).

    ``begun``: the transaction is already open (``_begin_without_waiting``)."""
    try:
        if not begun:
            db.execute("BEGIN IMMEDIATE")
        db.execute("SAVEPOINT grouped")
    except sqlite3.Error as exc:
        _fail_group(db, units, exc)
        return
    failed = _run_plainly(db, units)
    if failed is not None:
        unit, raised = failed
        if not db.in_transaction:
            # SQLite rolled the whole transaction back (a full disk, an I/O error).
            _fail_group(db, units, raised if isinstance(raised, sqlite3.Error) else None)
            if not isinstance(raised, sqlite3.Error):
                unit.outcome = (None, raised)
            return
        try:
            db.execute("ROLLBACK TO grouped")
        except sqlite3.Error as undo:
            _fail_group(db, units, undo)
            return
        if not _run_in_savepoints(db, units):
            return
    try:
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        _fail_group(db, units, exc)


def _run_plainly(db: sqlite3.Connection, units: list[_Unit]) -> tuple[_Unit, BaseException] | None:
    """Run ``units`` in the transaction under way, without savepoints; the first unit that
    raised and what it raised, if one did (the units after it have not run)."""
    _in_group.db = db
    try:
        for unit in units:
            try:
                unit.outcome = (unit.work(db), None)
            except BaseException as exc:  # noqa: BLE001 - the group runs again, or fails
                return unit, exc
    finally:
        _in_group.db = None
    return None


def _run_in_savepoints(db: sqlite3.Connection, units: list[_Unit]) -> bool:
    """Run ``units`` in the transaction under way, each in a savepoint: one that raises is
    rolled back alone and gets its exception. ``False`` when the transaction could not go on
    (every unit's outcome is then set to the failure, and it has been rolled back)."""
    _in_group.db = db
    try:
        for unit in units:
            try:
                db.execute("SAVEPOINT unit")
                unit.outcome = (unit.work(db), None)
                db.execute("RELEASE unit")
            except BaseException as exc:  # noqa: BLE001 - handed to the unit's caller
                if not db.in_transaction:
                    # SQLite rolled the whole transaction back (a full disk, an I/O error):
                    # what the units before this one did is gone too.
                    _fail_group(db, units, exc if isinstance(exc, sqlite3.Error) else None)
                    if not isinstance(exc, sqlite3.Error):
                        unit.outcome = (None, exc)
                    return False
                try:
                    db.execute("ROLLBACK TO unit")
                    db.execute("RELEASE unit")
                except sqlite3.Error as undo:
                    _fail_group(db, units, undo)
                    return False
                unit.outcome = (None, exc)
    finally:
        _in_group.db = None
    return True


def _fail_group(db: sqlite3.Connection, units: list[_Unit], error: sqlite3.Error | None) -> None:
    """Roll back what is left of the group's transaction; every unit fails with ``error``
    (or, without one, with ``SQLITE_ABORT``'s own error)."""
    with suppress(sqlite3.Error):
        db.execute("ROLLBACK")
    failure = error or sqlite3.OperationalError("the group's transaction was rolled back")
    for unit in units:
        unit.outcome = (None, failure)


def _settle(units: list[_Unit]) -> None:
    """On the loop: give each waiting caller its unit's outcome."""
    for unit in units:
        if unit.future.cancelled():
            continue
        result, error = unit.outcome
        if error is None:
            unit.future.set_result(result)
        else:
            unit.future.set_exception(error)


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` if the body or the ``COMMIT`` fails.

    ``IMMEDIATE`` takes the file's write lock before the first read, so what the body reads
    cannot change under it. A ``COMMIT`` that fails (``SQLITE_BUSY``, ``SQLITE_FULL``) leaves
    the transaction open, so it is rolled back too: the connection never keeps a transaction
    past its unit of work.
    """
    if getattr(_in_group, "db", None) is db:  # a grouped unit: the group's is its transaction
        yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


_ROWS_PER_STATEMENT: Final = 256
"""Rows ``insert_rows`` puts in one statement at most (fewer if SQLite allows fewer
parameters)."""


def insert_rows(db: sqlite3.Connection, insert: str, rows: Sequence[Sequence[object]]) -> None:
    """Insert ``rows`` with ``insert`` (``INSERT ... (columns) VALUES``, a constant) in a few
    statements rather than one a row.

    ``sqlite3`` lets go of the GIL for every step of a statement, and ``executemany`` makes a
    step a row. On the connection's thread each step then waits to get the GIL back from the
    event loop, which under load holds it until it must let go (``sys.getswitchinterval``, 5
    ms): a batch of 256 audit entries took about a second, of which 0.07 s was work.

    Statements hold a power of two of rows, the largest first (300 rows: 256, 32, 8 and 4),
    so that a connection caches a few shapes of each statement, not one per batch size.
    """
    if not rows:
        return
    width = len(rows[0])
    most = min(_ROWS_PER_STATEMENT, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    size = 1 << max(most, 1).bit_length() - 1  # the largest power of two within the limits
    start = 0
    while start < len(rows):
        while size > len(rows) - start:
            size //= 2
        chunk = rows[start : start + size]
        marks = ", ".join(["(" + ", ".join("?" * width) + ")"] * size)
        db.execute(f"{insert} {marks}", [value for row in chunk for value in row])
        start += size
