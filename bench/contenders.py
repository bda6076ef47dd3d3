"""The contenders: burnlink on each store, Snappass, and the bare ASGI ceiling.

Each is started on 127.0.0.1 with the same number of worker processes, measured by
``measure`` (create, then reveal of distinct secrets), and stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from bench import load
from bench.load import Load, Measurement, Request
from bench.procs import (
    Server,
    cpu_times,
    free_port,
    group_cpu_seconds,
    idle_since,
    machine_busy,
    named_cpu_seconds,
    serving,
)
from bench.stores import RATE_LIMITS_WIDE

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = Path(sys.executable).parent
SNAPPASS_VENV = BENCH / ".venv-snappass"

SAMPLE_TEXT = "bench: correct horse battery staple"
BURNLINK_CREATE = Request(
    "POST",
    "/api/v1/secrets",
    "application/json",
    json.dumps({"secret": SAMPLE_TEXT, "ttl": 3600}, separators=(",", ":")),
)
# Snappass answers JSON instead of its HTML page when the client accepts only JSON.
SNAPPASS_CREATE = Request(
    "POST",
    "/",
    "application/x-www-form-urlencoded",
    "password=bench%3A+correct+horse+battery+staple&ttl=hour",
    accept="application/json",
)


@dataclass(frozen=True)
class Contender:
    """How to start one server and talk to it."""

    name: str
    kind: str  # "burnlink", "snappass", or "bare" (a bench/ app that takes synthetic reveals)
    command: Callable[[int], list[str]]
    create: Request
    reveal_type: str
    ready: str
    env: dict[str, str] = field(default_factory=dict)
    store_url: str | None = None

    @property
    def store_process(self) -> str | None:
        """The name of the store server's processes (``redis-server``, ``postgres``), whose CPU
        is measured beside the contender's own; ``None`` for a store inside the contender
        (SQLite, memory) or none."""
        url = self.store_url or self.env.get("BURNLINK_STORE") or self.env.get("REDIS_URL") or ""
        if url.startswith(("redis://", "rediss://")):
            return "redis-server"
        if url.startswith(("postgres://", "postgresql://")):
            return "postgres"
        return None


@dataclass
class Result:
    """What one contender did."""

    name: str
    create: Measurement | None = None
    reveal: Measurement | None = None
    peak_rss: int = 0
    create_cpu_us: float = 0.0
    """Server CPU time (all its processes, user + system) per create, in microseconds."""
    reveal_cpu_us: float = 0.0
    store_create_cpu_us: float | None = None
    """The store server's CPU time (every process of its name, see ``Contender.store_process``)
    per create, in microseconds; ``None`` when the store runs inside the contender."""
    store_reveal_cpu_us: float | None = None
    create_idle: float | None = None
    """The share of the machine's CPUs left idle while the creates ran: near 0 when the
    server, its store and wrk use the whole machine, higher when they wait (on a lock, a
    disk, each other)."""
    reveal_idle: float | None = None
    busy_before: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "create": self.create.as_dict() if self.create else None,
            "reveal": self.reveal.as_dict() if self.reveal else None,
            "peak_rss_bytes": self.peak_rss,
            "create_cpu_us": round(self.create_cpu_us),
            "reveal_cpu_us": round(self.reveal_cpu_us),
            "store_create_cpu_us": _rounded(self.store_create_cpu_us),
            "store_reveal_cpu_us": _rounded(self.store_reveal_cpu_us),
            "machine_idle_create": None if self.create_idle is None else round(self.create_idle, 3),
            "machine_idle_reveal": None if self.reveal_idle is None else round(self.reveal_idle, 3),
            "machine_busy_before": round(self.busy_before, 3),
            "notes": self.notes,
        }


def burnlink(
    name: str, store_url: str, workers: int, env: dict[str, str] | None = None
) -> Contender:
    """``burnlink serve --workers N`` on ``store_url``, as an operator would run it."""

    def command(port: int) -> list[str]:
        return [
            str(VENV_BIN / "burnlink"), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--store", store_url,
        ]  # fmt: skip

    return Contender(
        name,
        "burnlink",
        command,
        BURNLINK_CREATE,
        "application/json",
        "/healthz",
        env={**RATE_LIMITS_WIDE, **(env or {})},
        store_url=store_url,
    )


def burnlink_granian(name: str, store_url: str, workers: int) -> Contender:
    """The same app as ``burnlink serve`` under granian (``pip install granian`` into
    .venv-test; not a dependency), to compare the servers on one app. Its access log is off
    (burnlink writes its own line) and its logging is burnlink's (``app_from_environment``)."""

    def command(port: int) -> list[str]:
        return [
            str(VENV_BIN / "granian"), "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--loop", "uvloop", "--no-ws", "--log-level", "warning",
            "burnlink.web.app:app_from_environment",
        ]  # fmt: skip

    return Contender(
        name,
        "burnlink",
        command,
        BURNLINK_CREATE,
        "application/json",
        "/healthz",
        env={**RATE_LIMITS_WIDE, "BURNLINK_STORE": store_url},
        store_url=store_url,
    )


def snappass(redis_url: str, workers: int) -> Contender:
    """Snappass under gunicorn (sync workers, its documented deployment) on the same Redis."""

    def command(port: int) -> list[str]:
        return [
            str(SNAPPASS_VENV / "bin" / "gunicorn"), "--workers", str(workers),
            "--bind", f"127.0.0.1:{port}", "snappass.main:app",
        ]  # fmt: skip

    env = {"REDIS_URL": redis_url, "NO_SSL": "True", "REDIS_PREFIX": "snappass-bench:"}
    return Contender(
        "snappass", "snappass", command, SNAPPASS_CREATE, "application/x-www-form-urlencoded", "/",
        env=env,
    )  # fmt: skip


def _bare(
    name: str, app: str, workers: int, *, ready: str = "/", env: dict[str, str] | None = None
) -> Contender:
    # A bench/ app under uvicorn with the options `burnlink serve` gives it.
    def command(port: int) -> list[str]:
        return [
            str(VENV_BIN / "uvicorn"), app, "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--log-level", "info",
            "--no-proxy-headers", "--no-server-header", "--no-access-log",
        ]  # fmt: skip

    return Contender(name, "bare", command, BURNLINK_CREATE, "application/json", ready, env or {})


def ceiling(workers: int) -> Contender:
    """The bare ASGI app (``bench.ceiling``) under uvicorn with ``burnlink serve``'s options."""
    return _bare("ceiling (bare ASGI)", "bench.ceiling:app", workers)


def floor(store_url: str, workers: int) -> Contender:
    """The ceiling plus one Redis call per request (``bench.floor``), on the same stack."""
    return _bare(
        "floor (bare ASGI + 1 Redis call)",
        "bench.floor:app",
        workers,
        env={"BURNLINK_STORE": store_url},
    )


def minimal(store_url: str, workers: int) -> Contender:
    """FastAPI and pydantic around one Redis call (``bench.minimal``), on the same stack."""
    return _bare(
        "minimal (FastAPI + pydantic + 1 Redis call)",
        "bench.minimal:app",
        workers,
        ready="/openapi.json",
        env={"BURNLINK_STORE": store_url},
    )


def ensure_snappass() -> None:
    """Create bench/.venv-snappass with the pinned Snappass and gunicorn, once."""
    if (SNAPPASS_VENV / "bin" / "gunicorn").exists():
        return
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(SNAPPASS_VENV)], check=True)
    subprocess.run(
        [
            str(SNAPPASS_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
            "--disable-pip-version-check", "-r", str(BENCH / "snappass-requirements.txt"),
        ],
        check=True,
    )  # fmt: skip


def _synthetic_reveals(count: int) -> list[str]:
    # The ceiling keeps no state, and the floor's and minimal's reveals only need their
    # round trip: any distinct ids will do.
    key = "A" * 43
    return [f'/api/v1/secrets/{n:022d}/reveal {{"key":"{key}"}}' for n in range(count)]


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)


class _Cpu:
    """CPU seconds of the contender's process group, of its store server and of the whole
    machine, read together at the start of a measurement and compared with what they are at
    its end."""

    def __init__(self, pgid: int, store_process: str | None) -> None:
        self._pgid, self._store = pgid, store_process
        self._machine = cpu_times()
        self._server = group_cpu_seconds(pgid)
        self._store_before = None if store_process is None else named_cpu_seconds(store_process)

    def idle(self) -> float:
        """The share of the machine's CPUs idle since the start."""
        return idle_since(self._machine)

    def per_request(self, requests: int) -> tuple[float, float | None]:
        """Microseconds of the server's CPU and of the store's (or ``None``) per request."""
        server = (group_cpu_seconds(self._pgid) - self._server) / max(requests, 1) * 1e6
        if self._store is None or self._store_before is None:
            return server, None
        store = named_cpu_seconds(self._store) - self._store_before
        return server, store / max(requests, 1) * 1e6


def started(contender: Contender, port: int, out: Path) -> AbstractContextManager[Server]:
    """``contender`` serving on ``port`` until the block ends, its output in ``out``."""
    return serving(
        contender.name,
        contender.command(port),
        port=port,
        ready_path=contender.ready,
        log=out / "server.log",
        env=contender.env,
        cwd=REPO,
    )


def reveal_lines(
    server: Server, contender: Contender, settings: Load, out: Path, create_rps: float
) -> list[str]:
    """Enough distinct secrets, made through ``server``, for a reveal run of ``settings``
    at about ``create_rps``: one reveal line each (synthetic ids for a bare app)."""
    needed = int(create_rps * (settings.duration + 1) * 2.5) + 2000
    if contender.kind == "bare":
        return _synthetic_reveals(max(needed * 4, 100_000))
    return load.harvest(
        server.base,
        contender.kind,
        contender.create,
        needed,
        settings,
        out / "harvest",
        out / "harvest.txt",
        limit=max(30.0, 4 * needed / max(create_rps, 1.0)),
    )


def measure(contender: Contender, settings: Load, work: Path, *, label: str = "") -> Result:
    """Start ``contender``, measure creates then reveals of distinct secrets, stop it."""
    tag = (label or contender.name).split(" ")[0]
    result = Result(label or contender.name)
    port = free_port()
    out = work / tag
    # Others' work on the machine skews every number: say how busy it was before we started.
    result.busy_before = machine_busy()
    if result.busy_before > 0.15:
        result.notes.append(f"machine {result.busy_before:.0%} busy before start")
    print(f"  {result.name}: starting on 127.0.0.1:{port}", flush=True)
    with started(contender, port, out) as server:
        if settings.warmup:
            load.fixed(
                server.base,
                contender.create,
                settings,
                out / "warmup.txt",
                duration=settings.warmup,
            )
        cpu = _Cpu(server.pgid, contender.store_process)
        result.create = load.fixed(server.base, contender.create, settings, out / "create.txt")
        result.create_idle = cpu.idle()
        result.create_cpu_us, result.store_create_cpu_us = cpu.per_request(result.create.requests)
        print(f"  {result.name}: create {result.create.rps:,.0f} req/s", flush=True)
        lines = reveal_lines(server, contender, settings, out, result.create.rps)
        print(f"  {result.name}: {len(lines):,} secrets to reveal", flush=True)
        warm = min(len(lines) // 10, int(result.create.rps))
        if warm:
            load.replay(
                server.base,
                lines[:warm],
                contender.reveal_type,
                settings,
                out,
                out / "reveal-warmup.txt",
                duration=1,
            )
        cpu = _Cpu(server.pgid, contender.store_process)
        result.reveal = load.replay(
            server.base, lines[warm:], contender.reveal_type, settings, out, out / "reveal.txt"
        )
        result.reveal_idle = cpu.idle()
        result.reveal_cpu_us, result.store_reveal_cpu_us = cpu.per_request(result.reveal.requests)
        print(f"  {result.name}: reveal {result.reveal.rps:,.0f} req/s", flush=True)
        if result.reveal.exhausted:
            result.notes.append("reveal ran out of secrets: void")
        for phase, m in (("create", result.create), ("reveal", result.reveal)):
            if m.status_errors or m.errors:
                result.notes.append(f"{phase}: {m.status_errors} HTTP errors, {m.errors} socket")
    result.peak_rss = server.peak_rss
    os.sync()
    return result
