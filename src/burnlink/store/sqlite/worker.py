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
before SQLite's own write lock. SQLite makes a writer that finds the file locked sleep and
retry, up to 100 ms a time, so under steady writes from several processes a few
transactions waited hundreds of milliseconds for a lock that had been free for most of that
time. ``WriterLock`` hands the turn over within a millisecond.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

__all__ = ["SqliteWorker", "WorkerClosed", "WriterLock", "error_name", "immediate_transaction"]

T = TypeVar("T")


def error_name(exc: sqlite3.Error) -> str:
    """A short, content-free name for a driver error (``SQLITE_BUSY``, ``SQLITE_FULL``, …)."""
    name = getattr(exc, "sqlite_errorname", None)
    return name if isinstance(name, str) else type(exc).__name__


class WorkerClosed(Exception):
    """Raised by ``SqliteWorker.run`` after ``aclose``."""


_FIRST_WAIT = 0.00005
_LONGEST_WAIT = 0.001


class WriterLock:
    """An exclusive lock shared by every process that writes one SQLite file.

    It is an ``flock`` on a file of its own beside the database (``<database>-lock``), never
    on the database itself: closing any descriptor of the database would drop SQLite's own
    POSIX locks. The kernel releases it when its holder exits, even by ``kill -9``. A waiter
    polls every 50 µs at first, backing off to every millisecond, and gives up after
    ``timeout`` with the error SQLite raises for a busy file.
    """

    def __init__(self, path: Path, *, timeout: timedelta) -> None:
        """Open (creating if needed, mode 0600) the lock file at ``path``."""
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._timeout = timeout.total_seconds()

    @classmethod
    def beside(cls, database: str, *, timeout: timedelta) -> WriterLock:
        """The lock of the database file at ``database``."""
        return cls(Path(f"{database}-lock"), timeout=timeout)

    def __enter__(self) -> None:
        deadline = time.monotonic() + self._timeout
        wait = _FIRST_WAIT
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked") from None
            time.sleep(wait)
            wait = min(wait * 2, _LONGEST_WAIT)

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (releasing the lock if held)."""
        os.close(self._fd)


class SqliteWorker:
    """A ``sqlite3.Connection`` in autocommit mode, used only from its own thread."""

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        connection: sqlite3.Connection,
        writer_lock: WriterLock | None = None,
    ) -> None:
        """Wrap an open connection; use ``SqliteWorker.open`` instead."""
        self._executor = executor
        self._connection: sqlite3.Connection | None = connection
        self._writer_lock = writer_lock

    @classmethod
    async def open(
        cls, target: str, *, busy_timeout: timedelta, name: str, read_only: bool = False
    ) -> SqliteWorker:
        """Connect to ``target`` (a path or ``:memory:``) on a new thread called ``name``;
        a file gets its ``WriterLock``.

        ``read_only`` opens an existing file with ``mode=ro``: nothing (not even the file or
        its lock file) is created, and every write fails. Raises ``sqlite3.Error`` when the
        database cannot be opened, ``OSError`` when its lock file cannot.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

        def connect() -> tuple[sqlite3.Connection, WriterLock | None]:
            lock = None
            if target != ":memory:" and not read_only:
                lock = WriterLock.beside(target, timeout=busy_timeout)
            try:
                connection = sqlite3.connect(
                    f"{Path(target).expanduser().absolute().as_uri()}?mode=ro"
                    if read_only
                    else target,
                    timeout=busy_timeout.total_seconds(),
                    isolation_level=None,
                    uri=read_only,
                )
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
        return cls(executor, connection, lock)

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called."""
        return self._connection is None

    async def run(self, work: Callable[[sqlite3.Connection], T], *, writes: bool = False) -> T:
        """``work(connection)`` on the worker thread; its result or its exception.

        ``writes``: ``work`` writes, so it runs holding the file's ``WriterLock``.
        """
        connection = self._connection
        if connection is None:
            raise WorkerClosed
        loop = asyncio.get_running_loop()
        lock = self._writer_lock
        if writes and lock is not None:
            return await loop.run_in_executor(self._executor, _holding, lock, work, connection)
        return await loop.run_in_executor(self._executor, work, connection)

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

        def close() -> None:
            with suppress(sqlite3.Error):
                connection.close()
            if lock is not None:
                lock.close()

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, close)
        finally:
            self._executor.shutdown(wait=False)


def _holding(
    lock: WriterLock, work: Callable[[sqlite3.Connection], T], connection: sqlite3.Connection
) -> T:
    with lock:
        return work(connection)


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` if the body or the ``COMMIT`` fails.

    ``IMMEDIATE`` takes the file's write lock before the first read, so what the body reads
    cannot change under it. A ``COMMIT`` that fails (``SQLITE_BUSY``, ``SQLITE_FULL``) leaves
    the transaction open, so it is rolled back too: the connection never keeps a transaction
    past its unit of work.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
