"""The benchmark's one command: ``.venv-test/bin/python -m bench`` (see docs/operations.md).

Starts every contender on 127.0.0.1, drives it with wrk (create: a fixed POST; reveal: a
distinct secret per request), prints the table, the ratios against Snappass and the bare ASGI
ceiling, and the floor's share of the ceiling, and writes everything to
bench/results/<time>.json. Every process it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import coldstart, contenders, size, stores
from bench.contenders import BENCH, Result
from bench.load import Load

NAMES = ("sqlite", "redis", "postgres", "snappass", "ceiling", "floor", "minimal")
# Diagnostic variants, run only when named in --only.
EXTRA = ("redis-audit-memory", "redis-granian")
MIB = 1024 * 1024


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (-c)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=NAMES + EXTRA,
        default=list(NAMES),
        help="contenders to run; floor is the ceiling plus one Redis call per request, minimal"
        " the floor inside FastAPI and pydantic;"
        " redis-audit-memory is burnlink on Redis with its audit log in memory, to show what"
        " the default audit log (a SQLite file) costs",
    )
    parser.add_argument(
        "--redis-url", help="use this Redis instead of a private redis-server (keys are prefixed)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BURNLINK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server; the benchmark creates and drops a database of its own",
    )
    parser.add_argument(
        "--size", type=int, default=0, metavar="N",
        help="also measure each burnlink backend empty and with N live secrets (e.g. 1000000)",
    )  # fmt: skip
    parser.add_argument("--size-only", action="store_true", help="with --size: skip the main table")
    parser.add_argument(
        "--profile", action="store_true", help="also profile burnlink's workers with py-spy"
    )
    parser.add_argument(
        "--no-cold-start", action="store_true", help="skip the hyperfine run of burnlink share"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N",
        help="run the contenders N times in turn; the targets are judged on each figure's"
        " median over the runs, and each run's table is printed",
    )  # fmt: skip
    return parser.parse_args(argv)


@contextlib.contextmanager
def _redis(args: argparse.Namespace, work: Path) -> Iterator[str]:
    if args.redis_url:
        yield args.redis_url
    else:
        with stores.private_redis(work) as url:
            yield url


def _check_tools(args: argparse.Namespace) -> None:
    needed = ["wrk"]
    if not args.redis_url:
        needed.append("redis-server")
    if not args.no_cold_start:
        needed.append("hyperfine")
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"bench: missing {', '.join(missing)}; on Debian: apt-get install {' '.join(missing)}"
        )


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def table(results: list[Result]) -> str:
    """The results as a Markdown table."""
    rows = [
        "| contender | create req/s | create p50 / p99 ms | reveal req/s | reveal p50 / p99 ms"
        " | server CPU µs per create / reveal | store CPU µs per create / reveal"
        " | machine idle % create / reveal | peak RSS MiB | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        c, v = r.create, r.reveal
        store = (
            "-"
            if r.store_create_cpu_us is None or r.store_reveal_cpu_us is None
            else f"{r.store_create_cpu_us:,.0f} / {r.store_reveal_cpu_us:,.0f}"
        )
        idle = (
            "-"
            if r.create_idle is None or r.reveal_idle is None
            else f"{r.create_idle * 100:.0f} / {r.reveal_idle * 100:.0f}"
        )
        rows.append(
            f"| {r.name} "
            f"| {c.rps:,.0f} | {_ms(c.p50_ms)} / {_ms(c.p99_ms)} "
            f"| {v.rps:,.0f} | {_ms(v.p50_ms)} / {_ms(v.p99_ms)} "
            f"| {r.create_cpu_us:,.0f} / {r.reveal_cpu_us:,.0f} | {store} | {idle} "
            f"| {r.peak_rss / MIB:.0f} | {'; '.join(r.notes)} |"
            if c and v
            else f"| {r.name} | - | - | - | - | - | - | - | {r.peak_rss / MIB:.0f}"
            f" | {'; '.join(r.notes)} |"
        )
    return "\n".join(rows)


# The targets: the figure's name (see ``figures``), at least or at most, the bound, and
# how its line reads.
_TARGETS = (
    ("redis/snappass", ">=", 3.0, "Redis {phase} >= 3x Snappass: {value:.2f}x"),
    (
        "redis cpu/floor",
        "<=",
        2.5,
        "Redis server CPU per {phase} <= 2.5x the floor's: {value:.2f}x",
    ),
    ("redis/ceiling", ">=", 0.5, "Redis {phase} >= 50% of ceiling: {value:.0%}"),
    ("sqlite/snappass", ">=", 1.5, "SQLite {phase} >= 1.5x Snappass: {value:.2f}x"),
    ("postgres/snappass", ">=", 1.0, "PostgreSQL {phase} >= 1x Snappass: {value:.2f}x"),
)
# What a store call alone, and with the framework, reaches bounds every Redis-backed service
# on this stack: the floor against the ceiling, minimal against Snappass.
_BOUNDS = (
    ("floor", "bare ASGI + 1 Redis call", "ceiling"),
    ("minimal", "FastAPI + pydantic + 1 Redis call", "ceiling"),
    ("minimal", "FastAPI + pydantic + 1 Redis call", "snappass"),
)
_PHASES = ("create", "reveal")


def figures(results: list[Result]) -> dict[str, float]:
    """Every figure of one run that a target or a bound is judged on: each burnlink store's
    req/s against Snappass and the ceiling (``"redis/snappass create"``), Redis's server CPU
    per request against the floor's (``"redis cpu/floor create"``), the bounds
    (``"minimal/snappass reveal"``) and the reveal p99s (``"sqlite reveal p99 ms"``)."""
    by_name = {r.name.split(" ")[0]: r for r in results}
    found: dict[str, float] = {}

    def rps_ratio(mine: Result | None, other: Result | None, phase: str) -> float | None:
        if mine is None or other is None:
            return None
        a, b = getattr(mine, phase), getattr(other, phase)
        return None if a is None or b is None or not b.rps else a.rps / b.rps

    for backend in ("sqlite", "redis", "redis-audit-memory", "postgres"):
        mine = by_name.get(f"burnlink-{backend}")
        for phase in _PHASES:
            for other in ("snappass", "ceiling"):
                ratio = rps_ratio(mine, by_name.get(other), phase)
                if ratio is not None:
                    found[f"{backend}/{other} {phase}"] = round(ratio, 2)
    redis, floor = by_name.get("burnlink-redis"), by_name.get("floor")
    for phase in _PHASES:
        # Only a phase both measured: an unmeasured one's CPU reads 0, which would pass.
        measured = (getattr(r, phase, None) for r in (redis, floor))
        if any(m is None for m in measured):
            continue
        theirs = getattr(floor, f"{phase}_cpu_us")
        if theirs:
            found[f"redis cpu/floor {phase}"] = round(getattr(redis, f"{phase}_cpu_us") / theirs, 2)
    for name, _, other in _BOUNDS:
        for phase in _PHASES:
            ratio = rps_ratio(by_name.get(name), by_name.get(other), phase)
            if ratio is not None:
                found[f"{name}/{other} {phase}"] = round(ratio, 2)
    for backend in ("sqlite", "redis"):
        r = by_name.get(f"burnlink-{backend}")
        if r is not None and r.reveal is not None:
            found[f"{backend} reveal p99 ms"] = round(r.reveal.p99_ms, 1)
    return found


def verdicts(found: dict[str, float]) -> list[str]:
    """One PASS/FAIL line per target ``found`` has the figure for, then the bounds."""
    lines: list[str] = []
    for key, sense, bound, text in _TARGETS:
        for phase in _PHASES:
            value = found.get(f"{key} {phase}")
            if value is None:
                continue
            ok = value >= bound if sense == ">=" else value <= bound
            lines.append(f"{'PASS' if ok else 'FAIL'}  {text.format(phase=phase, value=value)}")
    for name, what, other in _BOUNDS:
        for phase in _PHASES:
            value = found.get(f"{name}/{other} {phase}")
            if value is not None:
                shown = (
                    f"{value:.0%} of the ceiling"
                    if other == "ceiling"
                    else f"{value:.2f}x Snappass"
                )
                lines.append(f"bound  {what}, {phase}: {shown}")
    for backend in ("sqlite", "redis"):
        p99 = found.get(f"{backend} reveal p99 ms")
        if p99 is not None:
            lines.append(
                f"{'PASS' if p99 < 50 else 'FAIL'}  {backend} reveal p99 < 50 ms: {p99:.1f} ms"
            )
    if not any(key.startswith(("redis/", "redis cpu/", "redis reveal")) for key in found):
        lines.append("(Redis not measured: no Redis targets checked)")
    return lines


def targets(results: list[Result]) -> tuple[dict[str, float], list[str]]:
    """The figures of one run (``figures``) and one PASS/FAIL line per target."""
    found = figures(results)
    return found, verdicts(found)


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the runs that have it."""
    keys = dict.fromkeys(key for run in runs for key in run)
    return {
        key: round(statistics.median(run[key] for run in runs if key in run), 2) for key in keys
    }


def _source_state() -> str:
    """The commit measured, and whether the work tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}"


def _terminate(number: int, frame: object) -> None:
    raise SystemExit(128 + number)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark; see ``--help``."""
    args = _arguments(argv)
    _check_tools(args)
    # Stop cleanly (every server, Redis and the database we made) on Ctrl-C or SIGTERM, even
    # when started in the background, where the shell ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    settings = Load(args.threads, args.connections, args.duration, args.warmup)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = BENCH / "work" / stamp
    work.mkdir(parents=True)
    os.environ.update(stores.RATE_LIMITS_WIDE)
    # Generated keys, and the audit log of a Redis store, go to the run directory, never to
    # the user's data directory.
    os.environ["BURNLINK_KEY_DIR"] = str(work / "keys")
    if "snappass" in args.only:
        contenders.ensure_snappass()
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    report: dict[str, Any] = {
        "command": command,
        "started": stamp,
        "source": _source_state(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "load": {
            "wrk_threads": args.threads,
            "connections": args.connections,
            "seconds": args.duration,
            "workers": args.workers,
        },
    }
    rounds: list[list[Result]] = []
    started = time.monotonic()
    with _redis(args, work) as redis_url, stores.postgres_database(args.postgres_url) as pg_url:
        redis_store, redis_prefix = stores.redis_prefix_url(redis_url)
        sqlite_file = work / "sqlite" / "burnlink.db"
        sqlite_file.parent.mkdir(parents=True)
        lineup = {
            "sqlite": contenders.burnlink(
                "burnlink-sqlite", f"sqlite://{sqlite_file}", args.workers
            ),
            "redis": contenders.burnlink("burnlink-redis", redis_store, args.workers),
            "postgres": contenders.burnlink("burnlink-postgres", pg_url, args.workers),
            "redis-audit-memory": contenders.burnlink(
                "burnlink-redis-audit-memory",
                redis_store,
                args.workers,
                env={"BURNLINK_AUDIT_STORE": "memory://"},
            ),
            "redis-granian": contenders.burnlink_granian(
                "burnlink-redis (granian)", redis_store, args.workers
            ),
            "snappass": contenders.snappass(redis_url, args.workers),
            "ceiling": contenders.ceiling(args.workers),
            "floor": contenders.floor(redis_store, args.workers),
            "minimal": contenders.minimal(redis_store, args.workers),
        }
        try:
            if not args.size_only:
                print(
                    f"bench: wrk -t{args.threads} -c{args.connections}, {args.duration:.0f} s"
                    f" per measurement, {args.workers} workers per server",
                    flush=True,
                )
                order = [name for name in NAMES[:2] + EXTRA + NAMES[2:] if name in args.only]
                for run in range(args.repeat):
                    if args.repeat > 1:
                        print(f"bench: run {run + 1} of {args.repeat}", flush=True)
                    place = work / f"run-{run + 1}" if args.repeat > 1 else work
                    results = [contenders.measure(lineup[name], settings, place) for name in order]
                    rounds.append(results)
                report["runs"] = [
                    {"results": [r.as_dict() for r in run], "ratios": figures(run)}
                    for run in rounds
                ]
                # One run: its own figures; several: each figure's median, judged as one run's.
                report["results"] = [r.as_dict() for r in rounds[-1]]
                report["ratios"] = medians([figures(run) for run in rounds])
                report["targets"] = verdicts(report["ratios"])
            if not args.no_cold_start:
                print("bench: cold start of burnlink share (hyperfine)", flush=True)
                report["cold_start"] = coldstart.measure(work)
            if args.size:
                report["size"] = []
                for name in ("sqlite", "redis", "postgres"):
                    if name not in args.only:
                        continue
                    try:
                        report["size"].append(
                            size.run(
                                name,
                                args.size,
                                settings,
                                args.workers,
                                work,
                                redis_url,
                                args.postgres_url,
                            )
                        )
                    except Exception as exc:  # noqa: BLE001 - one backend failing must not lose the others
                        print(f"size mode, {name}: failed: {exc!r}", flush=True)
                        report.setdefault("errors", []).append(f"size {name}: {exc!r}")
            if args.profile:
                from bench.profile import profile

                report["profile"] = {
                    lineup[name].name: profile(lineup[name], settings, work)
                    for name in ("sqlite", "redis", "postgres")
                    if name in args.only
                }
        finally:
            if args.redis_url:
                stores.delete_redis_prefix(redis_url, redis_prefix)
                stores.delete_redis_prefix(redis_url, "snappass-bench:")
    report["seconds"] = round(time.monotonic() - started, 1)
    _print_report(report, rounds)
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    (out / f"{stamp}.json").write_text(text)
    (out / "latest.json").write_text(text)
    print(f"\nwrote bench/results/{stamp}.json (run files in bench/work/{stamp}/)")


def _print_report(report: dict[str, Any], rounds: list[list[Result]]) -> None:
    print(f"\n$ {report['command']}")
    for number, results in enumerate(rounds, 1):
        if len(rounds) > 1:
            print(f"\nrun {number} of {len(rounds)}:")
        print(table(results))
    if rounds:
        runs: list[dict[str, float]] = [run["ratios"] for run in report["runs"]]
        ratios: dict[str, float] = report.get("ratios", {})
        if len(rounds) > 1:
            print(f"\nmedians of {len(rounds)} runs (each run's figures in brackets):")
        print()
        for line in report.get("targets", []):
            print(line)
        print(
            "ratios: "
            + ", ".join(
                f"{k} {v:.2f}"
                + (
                    f" [{' '.join(f'{run[k]:.2f}' for run in runs if k in run)}]"
                    if len(runs) > 1
                    else ""
                )
                for k, v in ratios.items()
            )
        )
    cold: dict[str, dict[str, float]] | None = report.get("cold_start")
    if cold:
        print("\ncold start (hyperfine, mean ± stddev):")
        for name, t in cold.items():
            flag = ""
            if name == "burnlink share":
                flag = "  PASS (< 300 ms)" if t["mean"] < 0.3 else "  FAIL (>= 300 ms)"
            print(f"  {name:20s} {t['mean'] * 1000:6.0f} ms ± {t['stddev'] * 1000:.0f}{flag}")
    for sized in report.get("size", []):
        _print_size(sized)


def _print_size(s: dict[str, Any]) -> None:
    print(
        f"\nsize mode, {s['backend']}: {s['live']:,} live secrets loaded in"
        f" {s['load_seconds']} s, {s['bytes_per_secret']} bytes per stored secret"
    )
    for label in ("empty", "loaded"):
        c, v = s[label]["create"], s[label]["reveal"]
        if c and v:
            print(
                f"    {label:6s} create {c['rps']:8,.0f} req/s p99 {c['p99_ms']:6.1f} ms"
                f" | reveal {v['rps']:8,.0f} req/s p99 {v['p99_ms']:6.1f} ms"
            )
    ratios = s["ratios"]
    if ratios:
        worst = max(ratios["create_rps_empty_over_loaded"], ratios["reveal_rps_empty_over_loaded"])
        print(
            f"    {'PASS' if worst <= 1.25 else 'FAIL'}  throughput within 1.25x of empty:"
            f" create {ratios['create_rps_empty_over_loaded']:.2f}x,"
            f" reveal {ratios['reveal_rps_empty_over_loaded']:.2f}x"
        )
    for label, sweep in s["sweeps"].items():
        print(f"    sweep {label:22s}: {sweep['ended']:>6} ended in {sweep['seconds']:.3f} s")


if __name__ == "__main__":
    main()
