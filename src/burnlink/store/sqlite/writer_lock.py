"""``WriterLock``: the turn to write one SQLite file, shared by every process that writes it,
and given in the order the writers asked for it.

SQLite makes a writer that finds the file locked sleep and retry, up to 100 ms a time, so
under steady writes from several processes some transactions waited hundreds of
milliseconds for a lock that had been free for most of that time. A writer here waits in the
kernel instead, which wakes it as soon as the turn is free, and in line: a process that has
just written and asks again queues behind a writer already waiting, instead of taking the
turn back before that writer's thread has run (which, under steady writes, left a waiter
losing for hundreds of milliseconds).

Two ``flock`` locks on files of their own beside the database (never on the database itself,
where closing any descriptor would drop SQLite's own POSIX locks):

- ``<database>-lock``, *the turn*, held while writing;
- ``<database>-lock-next``, *the place next in line*, held by one waiting writer until it
  has the turn. A writer takes the place before the turn, so while someone waits, the writer
  that holds the turn cannot take it again without queueing for the place.

The kernel releases both when their holder exits, even by ``kill -9``. A ``flock`` that
blocks cannot time out, so a writer that must wait does so on a thread of the lock's own and
gives up after ``timeout`` with the error SQLite raises for a busy file; a wait given up on
lets the turn go as soon as it gets it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitTimedOut
from datetime import timedelta
from pathlib import Path

__all__ = ["WriterLock"]


class _Wait:
    """One writer's wait for the turn, on the lock's thread, and how it ended."""

    __slots__ = ("abandoned", "granted")

    def __init__(self) -> None:
        self.granted = False
        self.abandoned = False


class WriterLock:
    """An exclusive lock shared by every process that writes one SQLite file; a context
    manager, taken by one thread at a time (the connection's own)."""

    def __init__(self, path: Path, *, timeout: timedelta) -> None:
        """Open (creating if needed, mode 0600) the lock files at ``path`` (the turn) and
        ``<path>-next`` (the place next in line)."""
        self._turn = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            self._next = os.open(f"{path}-next", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except BaseException:
            os.close(self._turn)
            raise
        self._timeout = timeout.total_seconds()
        self._guard = threading.Lock()
        self._waiter: ThreadPoolExecutor | None = None
        self._waits = 0
        """Waits handed to the lock's thread that have not ended (one given up on may still
        be blocked in the kernel)."""
        self._closed = False

    @classmethod
    def beside(cls, database: str, *, timeout: timedelta) -> WriterLock:
        """The lock of the database file at ``database`` (``<database>-lock``)."""
        return cls(Path(f"{database}-lock"), timeout=timeout)

    def __enter__(self) -> None:
        if self._take_if_free():
            return
        with self._guard:
            if self._waiter is None:
                self._waiter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-turn")
            wait = _Wait()
            future = self._waiter.submit(self._wait_in_line, wait)
            self._waits += 1
        try:
            future.result(timeout=self._timeout)
        except WaitTimedOut:
            with self._guard:
                if not wait.granted:
                    wait.abandoned = True
                    raise sqlite3.OperationalError("database is locked") from None

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self._turn, fcntl.LOCK_UN)

    def try_take(self) -> bool:
        """Take the turn if it is free, without waiting; ``False`` if it is not, or if a wait
        of this process is still under way (one given up on may hold the place in line
        through this process's own file, where a ``flock`` from here would not see it). The
        caller lets go with ``__exit__``, and must be the only one in its process using the
        lock meanwhile (``SqliteWorker`` makes sure)."""
        with self._guard:
            if self._waits or self._closed:
                return False
        return self._take_if_free()

    def _take_if_free(self) -> bool:
        """Take the turn without waiting if nobody holds it or waits for it."""
        try:
            fcntl.flock(self._next, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        try:
            fcntl.flock(self._turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        else:
            return True
        finally:
            fcntl.flock(self._next, fcntl.LOCK_UN)

    def _wait_in_line(self, wait: _Wait) -> None:
        """On the lock's thread: queue for the place next in line, then for the turn."""
        taken = False
        try:
            fcntl.flock(self._next, fcntl.LOCK_EX)
            try:
                fcntl.flock(self._turn, fcntl.LOCK_EX)
                taken = True
            finally:
                fcntl.flock(self._next, fcntl.LOCK_UN)
        finally:  # even when a flock failed, so that close() can still close the files
            with self._guard:
                self._waits -= 1
                if taken and (wait.abandoned or self._closed):
                    fcntl.flock(self._turn, fcntl.LOCK_UN)
                elif taken:
                    wait.granted = True
                if self._closed and not self._waits:
                    self._close_files()

    def close(self) -> None:
        """Close the lock files (releasing the lock if held). A wait still blocked in the
        kernel closes them when it ends, so their descriptors are never reused under it."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            if not self._waits:
                self._close_files()
        if self._waiter is not None:
            self._waiter.shutdown(wait=False)

    def _close_files(self) -> None:
        os.close(self._next)
        os.close(self._turn)
