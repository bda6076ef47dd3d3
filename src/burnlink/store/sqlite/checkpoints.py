"""Checkpoints of a SQLite file's write-ahead log, off the event loop (``Checkpointer``).

In WAL mode a commit appends pages to the log, and by default the commit that takes the log
past 1,000 pages also copies them back into the database file and waits for the disk
(``wal_autocheckpoint``). ``SqliteWorker`` commits on the event loop when nothing has to wait
(see ``worker``), so that commit would hold the loop for the whole copy: every few seconds
under load, 20 to 150 ms in ``bench.inproc`` on a slow machine, and every request in flight
waited for it. So a worker's connection never checkpoints (``wal_autocheckpoint = 0``); a
``Checkpointer`` does, with a connection of its own on a thread of its own, at most once per
``every`` seconds, when the worker asks (it asks on each unit of work it is given). A
``PASSIVE`` checkpoint waits for nobody and nobody waits for it: the worker's connection goes
on reading and writing meanwhile, and a checkpoint another connection or process is running
is left to finish (this one then copies nothing and tries again on the next ask).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Final

__all__ = ["CHECKPOINT_EVERY", "Checkpointer"]

log = logging.getLogger("burnlink.store")

CHECKPOINT_EVERY: Final = 1.0
"""Seconds at least between two checkpoints of one worker's file."""


_ANOTHERS_TURN: Final = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
"""What a checkpoint meets while another connection's runs (another worker process's): not
worth a warning, the next ask tries again."""


class Checkpointer:
    """Checkpoints the log of the file at ``path`` on its own thread and connection."""

    def __init__(self, path: str, *, name: str, every: float = CHECKPOINT_EVERY) -> None:
        """``name`` names the thread."""
        # ``mode=rw``: a file removed meanwhile is not made again, empty, by a checkpoint.
        self._uri = f"{Path(path).expanduser().absolute().as_uri()}?mode=rw"
        self._every = every
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-checkpoint")
        self._next = time.monotonic() + every
        self._running: Future[None] | None = None

    def ask(self) -> None:
        """Start a checkpoint if ``every`` seconds have passed since the last one started and
        none is running; else nothing (a comparison of two floats: called per unit of work)."""
        now = time.monotonic()
        if now < self._next:
            return
        running = self._running
        if running is not None and not running.done():
            return
        self._next = now + self._every
        with suppress(RuntimeError):  # closed: nothing more to checkpoint
            self._running = self._executor.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        """On the checkpointer's thread: one ``PASSIVE`` checkpoint, on a connection opened
        for it (one kept open would go on seeing the journal mode the file had when it was
        opened). A failure is logged by its name alone; the worker's own statements meet any
        lasting one and report it."""
        try:
            connection = sqlite3.connect(self._uri, timeout=0, isolation_level=None, uri=True)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
        except sqlite3.Error as exc:
            name = getattr(exc, "sqlite_errorname", type(exc).__name__)
            if name not in _ANOTHERS_TURN:
                log.warning("SQLite WAL checkpoint failed (%s); tried again later", name)

    def close(self) -> None:
        """Wait for a running checkpoint and stop the thread."""
        self._executor.shutdown(wait=True)
