"""``python -m bench.inproc``: burnlink's own CPU per create and per reveal, without HTTP.

The main harness measures the whole server under wrk on a 2-core machine, where the load
generator, the store and the workers share the cores and one run differs from the next by
±15 %. This measures only what burnlink's code costs: it calls the ASGI app (the app
``burnlink serve`` runs, with its middleware, hot routes, service, store, audit log, sealer
and access log) directly from tasks in the same process, ``--concurrency`` at a time, and
divides the process's CPU time (user + system) by the requests. Nothing but the HTTP server
is left out: no sockets to clients, no uvicorn parsing. The figure moves by a few per cent
between runs, so a change to the hot path can be judged in seconds. On Redis and PostgreSQL
the store server's CPU per request is printed beside it (every process of its name on the
machine, as the main harness counts it: run nothing else against that server meanwhile).

Each phase ends once the sealer has sealed every event the phase recorded, so that the
sealing counts in the phase whose events it seals, however the sealer's batches fell.

Each phase also prints its requests' latency (p50, p99 and the longest), from the call to
the last byte of the answer, ``--concurrency`` at a time: without sockets, wrk and the
scheduler of a machine whose cores the load generator shares, what moves it is mostly how
long the event loop is held at a time (a seal, a commit, a checkpoint on the loop).

Creates are the benchmark's (curl mode: ``{"secret": ..., "ttl": 3600}``); each created
secret is then revealed once with the key from its link. ``--profile FILE`` samples the
reveals (or, with ``--phase create``, the creates) with py-spy into FILE (raw format).

The request log is written at ``BURNLINK_LOG_LEVEL`` (``info`` unless set; ``warning``
leaves it out), the audit log goes where ``BURNLINK_AUDIT_STORE`` says, and
``--rate-limits off`` stops counting the limits: each alone shows what that feature costs.

    .venv-test/bin/python -m bench.inproc --store redis --count 8000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import callgrind
from bench.contenders import BURNLINK_CREATE, VENV_BIN
from bench.procs import named_cpu_seconds
from bench.stores import RATE_LIMITS_WIDE, delete_redis_prefix, postgres_database

Message = dict[str, Any]

_STORE_SERVERS = {"redis": "redis-server", "postgres": "postgres"}
"""The store server's process name per ``--store``, for its CPU per request."""


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__)
    parser.add_argument("--store", choices=["redis", "sqlite", "postgres", "memory"])
    parser.add_argument(
        "--app",
        choices=["burnlink", "floor", "minimal"],
        default="burnlink",
        help="the app to call: burnlink (default), or the benchmark's floor (bare ASGI and one"
        " Redis call) or minimal contender (FastAPI, pydantic and one Redis call), on Redis, to"
        " set burnlink's figure against theirs in the same conditions",
    )
    parser.add_argument("--count", type=int, default=6000, help="secrets created and revealed")
    parser.add_argument(
        "--concurrency",
        type=int,
        help="requests in flight (default 32; 4 with --instructions, where a request is slow"
        " enough for 32 to reach the store's command timeout)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--profile", type=Path, help="py-spy raw output for one phase")
    parser.add_argument("--phase", choices=["create", "reveal"], default="reveal")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under valgrind's callgrind (slow, but the same"
        " count whatever else the machine does; use a small --count, e.g. 300)",
    )
    parser.add_argument(
        "--rate-limits",
        choices=["wide", "off"],
        default="wide",
        help="every BURNLINK_RATE_LIMIT_* so wide that nothing is refused, but still counted"
        " (default, as the harness runs), or off: what counting the limits costs",
    )
    parser.set_defaults(store="redis")
    args = parser.parse_args(argv)
    if args.concurrency is None:
        args.concurrency = 4 if args.instructions else 32
    if args.app != "burnlink" and args.store != "redis":
        parser.error(f"--app {args.app} runs on Redis only")
    return args


@contextlib.contextmanager
def _store_url(args: argparse.Namespace, work: Path) -> Iterator[str]:
    if args.store == "redis":
        # The Redis is the caller's: leave nothing behind in it (a run writes about 100,000
        # keys, and the leftovers of a few dozen runs slowed the next runs down).
        prefix = f"inproc-{uuid.uuid4().hex[:8]}:"
        try:
            yield f"{args.redis_url}?prefix={prefix}"
        finally:
            delete_redis_prefix(args.redis_url, prefix)
    elif args.store == "sqlite":
        yield f"sqlite:///{work / 'burnlink.db'}"
    elif args.store == "postgres":
        with postgres_database(args.postgres_url) as url:
            yield url
    else:
        yield "memory://"


class Driver:
    """Calls an ASGI app as uvicorn would, one request at a time per caller."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """Send one request; return its status and body."""
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": path,
            "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()), (b"user-agent", b"wrk"),
            ],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        given = False

        async def receive() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    async def settle(self) -> None:
        """Seal what the app's outbox holds (burnlink only; the floor and minimal keep no
        events), so that a phase's figure counts the sealing of its own events, all of it."""
        state = getattr(self.app, "state", None)
        service = getattr(state, "service", None)
        if service is not None:
            await service.reporter.sealer.drain()

    async def start(self) -> tuple[asyncio.Queue[Message], asyncio.Task[None]]:
        """Run the app's lifespan start-up; return the queue that shuts it down."""
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        outbox: asyncio.Queue[Message] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        task = asyncio.create_task(self.app(scope, inbox.get, outbox.put))
        started = await outbox.get()
        if started["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {started}")
        self._outbox = outbox
        return inbox, task

    async def stop(self, inbox: asyncio.Queue[Message], task: asyncio.Task[None]) -> None:
        """Run the lifespan shut-down."""
        await inbox.put({"type": "lifespan.shutdown"})
        await self._outbox.get()
        await task


@contextlib.contextmanager
def _sampled(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    command = [
        str(VENV_BIN / "py-spy"), "record", "--rate", "1000", "--format", "raw", "--gil",
        "--nonblocking", "-o", str(path), "--pid", str(os.getpid()),
    ]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait()


async def _phase(
    name: str, calls: list[tuple[str, bytes]], driver: Driver, args: Any
) -> list[bytes]:
    pending = iter(calls)
    answers: list[bytes] = []
    took: list[float] = []
    clock = time.perf_counter

    async def caller() -> None:
        for path, body in pending:
            started = clock()
            status, answer = await driver.call("POST", path, body)
            took.append(clock() - started)
            if status not in (200, 201):
                raise RuntimeError(f"{path}: {status} {answer[:200]!r}")
            answers.append(answer)

    profile = args.profile if args.phase == name else None
    server = _STORE_SERVERS.get(args.store)
    with _sampled(profile), callgrind.counted(name) as counted:
        store = named_cpu_seconds(server) if server else 0.0
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(args.concurrency)))
        await driver.settle()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        store = named_cpu_seconds(server) - store if server else 0.0
    if counted:
        print(f"{name}: {counted[0] / len(calls):,.0f} instructions per request", flush=True)
    else:
        beside = f", {server} {1e6 * store / len(calls):,.0f} µs" if server else ""
        took.sort()
        p50, p99 = (1e3 * took[int(len(took) * q)] for q in (0.5, 0.99))
        print(
            f"{name}: {1e6 * cpu / len(calls):,.0f} µs CPU per request{beside},"
            f" {len(calls) / wall:,.0f} requests/s ({len(calls)} requests),"
            f" latency p50 / p99 / max {p50:.1f} / {p99:.1f} / {1e3 * took[-1]:.1f} ms",
            flush=True,
        )
    return answers


async def _run(args: argparse.Namespace) -> None:
    from burnlink.store.redis import client
    from burnlink.web.app import app_from_environment  # after the environment is set

    if callgrind.UNDER_CALLGRIND:
        # Everything runs about fifty times slower, the audit log's thread included, which
        # valgrind runs in turn with the event loop: a store command would time out.
        vars(client)["COMMAND_TIMEOUT_SECONDS"] = 60.0

    if args.app == "floor":
        from bench.floor import app
    elif args.app == "minimal":
        from bench.minimal import app
    else:
        app = app_from_environment()
    driver = Driver(app)
    inbox, task = await driver.start()
    body = BURNLINK_CREATE.body.encode()
    create = "/api/v1/secrets"
    await _phase("warm-up", [(create, body)] * 300, driver, args)
    created = await _phase("create", [(create, body)] * args.count, driver, args)
    reveals = []
    for answer in created:
        link = json.loads(answer)
        key = link["url"].partition("#")[2]
        reveals.append((f"/api/v1/secrets/{link['id']}/reveal", json.dumps({"key": key}).encode()))
    await _phase("reveal", reveals, driver, args)
    await driver.stop(inbox, task)


def main(argv: list[str] | None = None) -> None:
    """Measure, print one line per phase."""
    argv = sys.argv[1:] if argv is None else argv
    args = _arguments(argv)
    if args.instructions and not callgrind.UNDER_CALLGRIND:
        callgrind.rerun("bench.inproc", argv)
    with (
        tempfile.TemporaryDirectory(prefix="burnlink-inproc-") as tmp,
        _store_url(args, Path(tmp)) as url,
    ):
        limits = RATE_LIMITS_WIDE
        if args.rate_limits == "off":
            limits = dict.fromkeys(RATE_LIMITS_WIDE, "off")
        os.environ.update(limits)
        os.environ["BURNLINK_STORE"] = url
        os.environ["BURNLINK_KEY_DIR"] = tmp
        os.environ.setdefault("BURNLINK_LOG_LEVEL", "info")
        # The access log is written as in production, to a file rather than the terminal.
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115 - lives as long as stderr
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            import uvloop

            uvloop.run(_run(args))
        finally:
            os.dup2(saved, 2)
            log.close()


if __name__ == "__main__":
    main(sys.argv[1:])
