"""``python -m bench.http_instructions``: instructions a server process runs per request, HTTP
included, counted under valgrind's callgrind.

The harness's server CPU per request is the issue's measure (burnlink against the floor: the
bare ASGI app with one Redis call, on the same uvicorn), but on a 2-core machine that also
runs wrk and the store it moves by 10 to 20 % between runs. ``bench.inproc --instructions``
is stable but leaves out the HTTP server. This counts the whole server process instead: one
worker serving ``--app`` under callgrind (counting on only while the measured requests run),
driven over ``--connections`` kept-alive connections by a small client in this process, and
prints the instructions per create and per reveal. The count is user space only (no kernel
time: socket calls, ``fsync``) and moves by well under 1 % between runs; everything runs
about fifty times slower, so use a few thousand requests.

    .venv-test/bin/python -m bench.http_instructions --app burnlink --store redis
    .venv-test/bin/python -m bench.http_instructions --app floor

Their ratio is the stable counterpart of the harness's "server CPU per create at most 2.5 times the
floor's" (docs/operations.md). burnlink's secrets are real ones, created and then revealed
once each; the floor and minimal apps reveal synthetic ids (one round trip each, as in the
harness).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.contenders import BURNLINK_CREATE, REPO, VENV_BIN
from bench.procs import free_port, serving
from bench.stores import RATE_LIMITS_WIDE, delete_redis_prefix

_APPS = {
    "floor": "bench.floor:app",
    "minimal": "bench.minimal:app",
}
_READY = {"burnlink": "/healthz", "floor": "/", "minimal": "/openapi.json"}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.http_instructions", description=__doc__)
    parser.add_argument("--app", choices=["burnlink", "floor", "minimal"], default="burnlink")
    parser.add_argument(
        "--store",
        choices=["redis", "sqlite"],
        default="redis",
        help="burnlink's store (the floor and minimal apps run on Redis)",
    )
    parser.add_argument("--requests", type=int, default=2000, help="creates, then as many reveals")
    parser.add_argument("--connections", type=int, default=4, help="kept-alive connections")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    if args.app != "burnlink" and args.store != "redis":
        parser.error(f"--app {args.app} runs on Redis only")
    return args


def _server_command(args: argparse.Namespace, port: int, out: Path) -> list[str]:
    valgrind = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out / 'callgrind.out'}",
    ]  # fmt: skip
    if args.app == "burnlink":
        return [
            *valgrind, str(VENV_BIN / "python"), "-m", "burnlink", "serve",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip
    return [
        *valgrind, str(VENV_BIN / "python"), "-m", "uvicorn", _APPS[args.app],
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "info",
        "--no-proxy-headers", "--no-server-header", "--no-access-log",
    ]  # fmt: skip


@contextlib.contextmanager
def _store_url(args: argparse.Namespace, out: Path) -> Iterator[str]:
    if args.store == "sqlite":
        yield f"sqlite:///{out / 'burnlink.db'}"
        return
    prefix = f"httpcount-{uuid.uuid4().hex[:8]}:"
    try:
        yield f"{args.redis_url}?prefix={prefix}"
    finally:
        delete_redis_prefix(args.redis_url, prefix)


class _Connection:
    """One kept-alive HTTP/1.1 connection that sends a request and reads its whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self._reader.readexactly(length)


async def _drive(port: int, calls: list[tuple[str, bytes]], connections: int) -> list[bytes]:
    """Send ``calls`` over ``connections`` connections, one at a time on each; the answers."""
    pending = iter(calls)
    answers: list[bytes] = []

    async def one() -> None:
        connection = _Connection(*await asyncio.open_connection("127.0.0.1", port))
        for path, body in pending:
            status, answer = await connection.post(path, body)
            if status not in (200, 201):
                raise RuntimeError(f"{path}: {status} {answer[:200]!r}")
            answers.append(answer)

    await asyncio.gather(*(one() for _ in range(connections)))
    return answers


SETTLE_SECONDS = 3.0
"""Counting goes on this long after the last answer, so that burnlink's sealer has sealed the
phase's events (it runs every 50 ms, some 50 times slower here): their sealing is part of
what a request costs."""


def _counted(pid: int, name: str, out: Path, run: Iterator[None]) -> int:
    """Instructions the process ``pid`` ran while ``run`` ran (counting on only then), and
    ``SETTLE_SECONDS`` after."""
    subprocess.run(["callgrind_control", "--instr=on", str(pid)], check=True, capture_output=True)
    next(run, None)
    time.sleep(SETTLE_SECONDS)
    subprocess.run(
        ["callgrind_control", f"--dump={name}", str(pid)], check=True, capture_output=True
    )
    subprocess.run(["callgrind_control", "--instr=off", str(pid)], check=True, capture_output=True)
    for dump in out.glob("callgrind.out.*"):
        text = dump.read_text(errors="replace")
        if f"\ndesc: Trigger: dump {name}\n" in text:
            totals = next(line for line in text.splitlines() if line.startswith("totals:"))
            return int(totals.split()[1])
    raise RuntimeError(f"no callgrind dump named {name}")


def main(argv: list[str] | None = None) -> None:
    """Count, print one line per phase."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    create = BURNLINK_CREATE.body.encode()
    with tempfile.TemporaryDirectory(prefix="burnlink-httpcount-") as tmp:
        out = Path(tmp)
        with _store_url(args, out) as store:
            env = {"BURNLINK_STORE": store, "BURNLINK_KEY_DIR": str(out / "keys")}
            if args.app == "burnlink":
                env.update(RATE_LIMITS_WIDE)
            port = free_port()
            command = _server_command(args, port, out)
            with serving(
                args.app, command, port=port, ready_path=_READY[args.app],
                log=out / "server.log", env=env, cwd=REPO, ready_timeout=600.0,
            ) as server:  # fmt: skip
                pid = server.process.pid
                asyncio.run(_drive(port, [("/api/v1/secrets", create)] * 100, args.connections))
                created: list[bytes] = []

                def creates() -> Iterator[None]:
                    calls = [("/api/v1/secrets", create)] * args.requests
                    created.extend(asyncio.run(_drive(port, calls, args.connections)))
                    yield

                count = _counted(pid, "create", out, creates())
                print(f"{args.app} {args.store} create: {count / args.requests:,.0f} instructions"
                      f" per request ({args.requests} requests)", flush=True)  # fmt: skip
                reveals = _reveals(args.app, created)

                def reveal() -> Iterator[None]:
                    asyncio.run(_drive(port, reveals, args.connections))
                    yield

                count = _counted(pid, "reveal", out, reveal())
                print(f"{args.app} {args.store} reveal: {count / len(reveals):,.0f} instructions"
                      f" per request ({len(reveals)} requests)", flush=True)  # fmt: skip


def _reveals(app: str, created: list[bytes]) -> list[tuple[str, bytes]]:
    """One reveal per created secret (burnlink), or as many of synthetic ids (the others)."""
    if app != "burnlink":
        key = json.dumps({"key": "A" * 43}).encode()
        return [(f"/api/v1/secrets/{n:022d}/reveal", key) for n in range(len(created))]
    calls = []
    for answer in created:
        link = json.loads(answer)
        body = json.dumps({"key": link["url"].partition("#")[2]}).encode()
        calls.append((f"/api/v1/secrets/{link['id']}/reveal", body))
    return calls


if __name__ == "__main__":
    main()
