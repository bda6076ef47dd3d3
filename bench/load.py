"""Driving a server with ``wrk``: fixed creates, harvests of created secrets, replays of reveals."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"
MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class Load:
    """How hard to push: wrk threads, open connections, seconds per measurement."""

    threads: int = 2
    connections: int = 64
    duration: float = 10.0
    warmup: float = 2.0


@dataclass(frozen=True)
class Measurement:
    """One wrk run, as its ``done()`` reported it."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    status_errors: int
    exhausted: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Request:
    """A fixed request: what a create sends."""

    method: str
    path: str
    content_type: str
    body: str
    accept: str | None = None

    def args(self) -> list[str]:
        extra = [self.accept] if self.accept else []
        return [self.method, self.path, self.content_type, self.body, *extra]


def _wrk(
    base: str,
    script: str,
    args: list[str],
    load: Load,
    duration: float,
    out: Path,
    *,
    finished: Callable[[], bool] | None = None,
) -> Measurement:
    """Run wrk; if ``finished`` turns true first, interrupt it (it then reports as usual)."""
    command = [
        "wrk",
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{max(duration, 1):.0f}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA / script),
        base,
        "--",
        str(load.threads),
        *args,
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as log:
        log.write(" ".join(command) + "\n\n")
        log.flush()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            while process.poll() is None:
                if finished is not None and finished():
                    process.send_signal(signal.SIGINT)
                    finished = None
                time.sleep(0.1)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = out.read_text()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}); see {out}")
    line = next((ln for ln in text.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result; see {out}")
    raw = json.loads(line[len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    latency = raw["latency_us"]
    return Measurement(
        requests=raw["requests"],
        seconds=round(seconds, 3),
        rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        errors=sum(errors[k] for k in ("connect", "read", "write", "timeout")),
        status_errors=errors["status"],
        exhausted=raw["exhausted"] > 0,
    )


def fixed(
    base: str, request: Request, load: Load, out: Path, *, duration: float | None = None
) -> Measurement:
    """Send ``request`` over and over for ``duration`` seconds (default: the load's)."""
    seconds = load.duration if duration is None else duration
    return _wrk(base, "static.lua", request.args(), load, seconds, out)


def harvest(
    base: str,
    kind: str,
    request: Request,
    count: int,
    load: Load,
    prefix: Path,
    out: Path,
    *,
    limit: float = 600,
) -> list[str]:
    """Create about ``count`` secrets with ``request``; return one reveal line per secret.

    Each line is ``PATH BODY`` for ``replay``; ``kind`` says how to read the answers
    (``burnlink`` JSON, or a ``snappass`` link).
    """
    for stale in prefix.parent.glob(prefix.name + ".*"):
        stale.unlink()
    done = [prefix.with_name(f"{prefix.name}.done.{n}") for n in range(load.threads)]
    _wrk(
        base,
        "harvest.lua",
        [kind, str(prefix), str(count), *request.args()],
        load,
        limit,
        out,
        finished=lambda: all(d.exists() for d in done),
    )
    for d in done:
        d.unlink(missing_ok=True)
    lines: list[str] = []
    for part in sorted(prefix.parent.glob(prefix.name + ".[0-9]*")):
        lines.extend(line for line in part.read_text().splitlines() if line.strip())
    return lines


def replay(
    base: str,
    lines: list[str],
    content_type: str,
    load: Load,
    work: Path,
    out: Path,
    *,
    duration: float | None = None,
) -> Measurement:
    """Send each of ``lines`` once (a distinct secret per request) for ``duration`` seconds."""
    file = work / (out.stem + ".requests")
    file.write_text("\n".join(lines) + "\n")
    seconds = load.duration if duration is None else duration
    try:
        return _wrk(base, "replay.lua", [str(file), content_type], load, seconds, out)
    finally:
        file.unlink(missing_ok=True)
