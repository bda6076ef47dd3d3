"""WriterLock: the turn to write one SQLite file, taken in the order writers asked for it,
given up on after the timeout, and never kept by a writer that has gone."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from burnlink.store.sqlite.writer_lock import WriterLock

TEN_SECONDS = timedelta(seconds=10)


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


def someone_holds(file: Path) -> bool:
    """Whether another open file description holds an ``flock`` on ``file``."""
    fd = os.open(file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_writer_that_asks_again_queues_behind_one_already_waiting(tmp_path: Path) -> None:
    database = str(tmp_path / "w.db")
    first = WriterLock.beside(database, timeout=TEN_SECONDS)
    second = WriterLock.beside(database, timeout=TEN_SECONDS)
    order: list[str] = []

    def write_second() -> None:
        with second:
            order.append("second")
            time.sleep(0.05)

    first.__enter__()
    waiter = threading.Thread(target=write_second)
    waiter.start()
    # In line, not merely trying the turn: a writer that finds it taken holds the place next
    # in line for a moment before it queues, and may let go of it in between.
    eventually(
        lambda: second._waits == 1 and someone_holds(tmp_path / "w.db-lock-next"),
        "the second writer waits in line",
    )
    first.__exit__()
    with first:  # at once, as a process with more to write does
        order.append("first again")
    waiter.join()

    assert order == ["second", "first again"]
    first.close()
    second.close()


def test_a_free_turn_is_taken_at_once_and_given_back(tmp_path: Path) -> None:
    lock = WriterLock.beside(str(tmp_path / "w.db"), timeout=TEN_SECONDS)
    with lock:
        assert someone_holds(tmp_path / "w.db-lock")
        assert not someone_holds(tmp_path / "w.db-lock-next")
    assert not someone_holds(tmp_path / "w.db-lock")
    lock.close()
    for name in ("w.db-lock", "w.db-lock-next"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


def test_a_wait_given_up_on_lets_the_turn_go(tmp_path: Path) -> None:
    database = str(tmp_path / "w.db")
    holder = WriterLock.beside(database, timeout=TEN_SECONDS)
    impatient = WriterLock.beside(database, timeout=timedelta(milliseconds=100))
    later = WriterLock.beside(database, timeout=timedelta(seconds=2))

    with holder, pytest.raises(sqlite3.OperationalError, match="database is locked"):
        impatient.__enter__()
    # The given-up wait gets the turn once it is free and lets it go at once.
    with later:
        pass
    eventually(lambda: not someone_holds(tmp_path / "w.db-lock"), "the turn is free")
    with impatient:  # and the impatient writer can write again
        pass
    for lock in (holder, impatient, later):
        lock.close()


def test_closing_during_a_wait_closes_its_files_when_the_wait_ends(tmp_path: Path) -> None:
    database = str(tmp_path / "w.db")
    holder = WriterLock.beside(database, timeout=TEN_SECONDS)
    before = open_descriptors()
    waiting = WriterLock.beside(database, timeout=timedelta(milliseconds=50))
    holder.__enter__()
    with pytest.raises(sqlite3.OperationalError):
        waiting.__enter__()
    waiting.close()  # its wait is still blocked in the kernel: the files stay open under it
    assert open_descriptors() == before + 2
    holder.__exit__()
    eventually(lambda: open_descriptors() == before, "the ended wait closed the files")
    assert not someone_holds(tmp_path / "w.db-lock")
    holder.close()


def test_the_turn_of_a_killed_writer_is_free(tmp_path: Path) -> None:
    database = str(tmp_path / "w.db")
    script = (
        "import sys, time\n"
        "from datetime import timedelta\n"
        "from burnlink.store.sqlite.writer_lock import WriterLock\n"
        "lock = WriterLock.beside(sys.argv[1], timeout=timedelta(seconds=10))\n"
        "lock.__enter__()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    argv = [sys.executable, "-c", script, database]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as child:  # noqa: S603 - fixed argv
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "held\n"
            lock = WriterLock.beside(database, timeout=TEN_SECONDS)
            waited = threading.Thread(target=lock.__enter__)
            waited.start()
            eventually(lambda: someone_holds(tmp_path / "w.db-lock-next"), "the writer waits")
            os.kill(child.pid, signal.SIGKILL)
            waited.join(timeout=10)
            assert not waited.is_alive()
            lock.__exit__()
            lock.close()
        finally:
            child.kill()
