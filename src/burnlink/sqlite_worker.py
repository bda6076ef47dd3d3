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
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import TypeVar

__all__ = ["SqliteWorker", "WorkerClosed", "immediate_transaction"]

T = TypeVar("T")


class WorkerClosed(Exception):
    """Raised by ``SqliteWorker.run`` after ``aclose``."""


class SqliteWorker:
    """A ``sqlite3.Connection`` in autocommit mode, used only from its own thread."""

    def __init__(self, executor: ThreadPoolExecutor, connection: sqlite3.Connection) -> None:
        """Wrap an open connection; use ``SqliteWorker.open`` instead."""
        self._executor = executor
        self._connection: sqlite3.Connection | None = connection

    @classmethod
    async def open(cls, target: str, *, busy_timeout: timedelta, name: str) -> SqliteWorker:
        """Connect to ``target`` (a path or ``:memory:``) on a new thread called ``name``.

        Raises ``sqlite3.Error`` when the file cannot be opened.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(
                target, timeout=busy_timeout.total_seconds(), isolation_level=None
            )

        try:
            connection = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, connection)

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called."""
        return self._connection is None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on the worker thread; its result or its exception."""
        connection = self._connection
        if connection is None:
            raise WorkerClosed
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work, connection)

    async def aclose(self) -> None:
        """Finish queued work, close the connection and stop the thread."""
        connection, self._connection = self._connection, None
        if connection is None:
            return

        def close() -> None:
            with suppress(sqlite3.Error):
                connection.close()

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, close)
        finally:
            self._executor.shutdown(wait=False)


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
