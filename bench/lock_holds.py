"""``python -m bench.lock_holds``: who holds SQLite's writer lock while ``burnlink serve`` on
SQLite takes the benchmark's creates and then its reveals, and for how long.

SQLite leaves the machine partly idle under load where Redis and PostgreSQL run out of CPU
(the harness's idle column): its requests wait, and every write to the file waits for the
file's one writer lock (``WriterLock``, storage.md). This starts the server as the harness
does (two workers, a fresh SQLite file, ``wrk -t2 -c64``) with ``bench/lockprobe`` on its
``PYTHONPATH``, whose ``sitecustomize`` times every hold of that lock in every worker, then
prints, for the creates and for the reveals, the share of the time each holder had the lock
(the requests' group commits on the event loop or on the store's thread, the audit log when
it shares the file), the share it was free, how long a hold lasted and how long a writer
waited for it. Nothing in ``src/`` changes; the probe costs a few microseconds a hold.

``.venv-test/bin/python -m bench.lock_holds --duration 5``; ``--audit-store URL`` sets
``BURNLINK_AUDIT_STORE`` (``same`` puts the log in the store's own file).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import load
from bench.contenders import burnlink, reveal_lines, started
from bench.load import Load
from bench.procs import free_port

PROBE = Path(__file__).resolve().parent / "lockprobe"

_HOLDERS = (
    ("loop", "requests, event loop"),
    ("thread", "requests, store's thread"),
    ("audit", "audit log"),
)


@dataclass(frozen=True)
class Hold:
    """One hold of a lock: its file, the thread that held it, when it asked, had it and let
    go."""

    lock: str
    thread: str
    asked: float
    had: float
    let_go: float

    @property
    def holder(self) -> str:
        """``audit``, ``loop`` or ``thread`` (see ``_HOLDERS``)."""
        if "audit" in self.thread:
            return "audit"
        return "loop" if self.thread == "MainThread" else "thread"


def read_holds(folder: Path) -> list[Hold]:
    """Every hold the probe wrote to ``folder``, in the order the lock was had."""
    holds = []
    for file in folder.glob("*.tsv"):
        for line in file.read_text(encoding="utf-8").splitlines():
            lock, thread, asked, had, let_go = line.split("\t")
            holds.append(Hold(lock, thread, float(asked), float(had), float(let_go)))
    return sorted(holds, key=lambda hold: hold.had)


def summary(holds: Sequence[Hold], start: float, end: float) -> dict[str, float]:
    """Shares of ``[start, end]`` each holder had the lock and it was free, and per holder the
    holds a second, mean hold and mean wait in milliseconds."""
    span = end - start
    inside = [h for h in holds if h.let_go > start and h.had < end]
    figures: dict[str, float] = {}
    held = 0.0
    for holder, _ in _HOLDERS:
        mine = [h for h in inside if h.holder == holder]
        share = sum(min(h.let_go, end) - max(h.had, start) for h in mine)
        held += share
        figures[f"{holder} share"] = share / span
        figures[f"{holder} per s"] = len(mine) / span
        figures[f"{holder} hold ms"] = 1e3 * share / len(mine) if mine else 0.0
        waits = [h.had - h.asked for h in mine]
        figures[f"{holder} wait ms"] = 1e3 * sum(waits) / len(waits) if waits else 0.0
    figures["free share"] = max(0.0, 1.0 - held / span)
    return figures


def table(phases: Sequence[tuple[str, float, str, dict[str, float]]]) -> str:
    """The summaries as a Markdown table, a row per phase, lock and holder (holders that
    never held that lock left out)."""
    rows = [
        "| phase | req/s | lock | holder | share of the time | holds a second | mean hold ms |"
        " mean wait ms |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for phase, rps, lock, figures in phases:
        for holder, name in _HOLDERS:
            if figures[f"{holder} per s"]:
                rows.append(
                    f"| {phase} | {rps:,.0f} | {lock} | {name} |"
                    f" {figures[f'{holder} share']:.0%} | {figures[f'{holder} per s']:,.0f} |"
                    f" {figures[f'{holder} hold ms']:.2f} | {figures[f'{holder} wait ms']:.2f} |"
                )
        rows.append(f"| {phase} | {rps:,.0f} | {lock} | free | {figures['free share']:.0%} | | | |")
    return "\n".join(rows)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lock_holds", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (-c)")
    parser.add_argument(
        "--audit-store", help="BURNLINK_AUDIT_STORE for the server; 'same': the store's file"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Measure, print the table."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    settings = Load(args.threads, args.connections, args.duration, warmup=2.0)
    with tempfile.TemporaryDirectory(prefix="burnlink-locks-") as tmp:
        work, holds_folder = Path(tmp), Path(tmp) / "holds"
        holds_folder.mkdir()
        store = f"sqlite://{work / 'burnlink.db'}"
        env = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROBE), os.environ.get("PYTHONPATH")])),
            "BURNLINK_BENCH_LOCK_LOG": str(holds_folder),
            "BURNLINK_KEY_DIR": str(work / "keys"),
        }
        if args.audit_store:
            env["BURNLINK_AUDIT_STORE"] = store if args.audit_store == "same" else args.audit_store
        contender = burnlink("burnlink-sqlite", store, args.workers, env)
        phases = []
        port = free_port()
        with started(contender, port, work) as server:
            load.fixed(server.base, contender.create, settings, work / "warmup.txt", duration=2)
            start = time.perf_counter()
            created = load.fixed(server.base, contender.create, settings, work / "create.txt")
            phases.append(("create", created.rps, start, time.perf_counter()))
            lines = reveal_lines(server, contender, settings, work, created.rps)
            start = time.perf_counter()
            revealed = load.replay(
                server.base, lines, contender.reveal_type, settings, work, work / "reveal.txt"
            )
            phases.append(("reveal", revealed.rps, start, time.perf_counter()))
        holds = read_holds(holds_folder)
    if not holds:
        raise SystemExit("bench.lock_holds: the probe recorded no hold (was it loaded?)")
    locks = sorted({hold.lock for hold in holds})
    print(
        table(
            [
                (name, rps, lock, summary([h for h in holds if h.lock == lock], a, b))
                for name, rps, a, b in phases
                for lock in locks
            ]
        )
    )


if __name__ == "__main__":
    main()
