"""Loaded at start-up by every Python process that has this folder on ``PYTHONPATH``
(``bench.lock_holds`` gives it to the server it starts): when ``BURNLINK_BENCH_LOCK_LOG`` names
a folder, every hold of burnlink's SQLite ``WriterLock`` in the process is timed and written
there as one line, ``lock file<TAB>thread<TAB>asked<TAB>had<TAB>let go``
(``time.perf_counter``, which on Linux is one clock for every process), in a file per
process. Nothing else changes."""

from __future__ import annotations

import os

_FOLDER = os.environ.get("BURNLINK_BENCH_LOCK_LOG")

if _FOLDER:
    import threading
    import time
    from pathlib import Path
    from typing import Any

    from burnlink.store.sqlite.writer_lock import WriterLock

    _enter, _exit, _try_take = WriterLock.__enter__, WriterLock.__exit__, WriterLock.try_take
    _held = threading.local()
    _names: dict[int, str] = {}
    """The lock file of each lock (by ``id``), read once from ``/proc``."""
    _out_lock = threading.Lock()
    _out = (Path(_FOLDER) / f"{os.getpid()}.tsv").open("a", encoding="utf-8")

    def _timed_enter(self: WriterLock) -> None:
        asked = time.perf_counter()
        _enter(self)
        _held.times = (asked, time.perf_counter())

    def _timed_try_take(self: WriterLock) -> bool:
        asked = time.perf_counter()
        taken = _try_take(self)
        if taken:
            _held.times = (asked, time.perf_counter())
        return taken

    def _timed_exit(self: WriterLock, *exc: Any) -> None:
        _exit(self, *exc)
        let_go = time.perf_counter()
        asked, had = getattr(_held, "times", (let_go, let_go))
        name = _names.get(id(self))
        if name is None:
            name = _names[id(self)] = os.path.basename(os.readlink(f"/proc/self/fd/{self._turn}"))
        thread = threading.current_thread().name
        line = f"{name}\t{thread}\t{asked:.6f}\t{had:.6f}\t{let_go:.6f}\n"
        with _out_lock:
            _out.write(line)
            _out.flush()

    WriterLock.__enter__ = _timed_enter  # type: ignore[method-assign]
    WriterLock.__exit__ = _timed_exit  # type: ignore[method-assign]
    WriterLock.try_take = _timed_try_take  # type: ignore[method-assign]
