"""Real ``burnlink`` server processes for tests that need more than one process or a real port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

START_TIMEOUT = 60.0
"""Seconds a started server process (burnlink, redis-server, nginx) may take to answer. Its
imports alone take a few seconds of CPU; on a 2-core host running the suite's workers
(scripts/test) it may wait as long again for a core. Only a broken start takes this long."""


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server_process(
    store: str, log_path: Path, *, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start ``burnlink serve`` on ``store`` in its own process; yield its base URL.

    Its stdout and stderr go to ``log_path``, so a test can read what it logged.
    """
    with running_server(store, log_path, env=env) as (base, _):
        yield base


@contextmanager
def running_server(
    store: str, log_path: Path, *, env: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``server_process``, yielding the process too (a test may kill it); ``host`` is the
    address it listens on (its base URL stays on 127.0.0.1)."""
    environment = {
        **os.environ,
        "BURNLINK_STORE": store,
        "BURNLINK_LOG_LEVEL": "debug",
        # Generated audit and signing keys go beside the log, never to the user's data dir;
        # servers started with the same log_path folder share them (and so one audit log).
        "BURNLINK_KEY_DIR": str(log_path.parent / "keys"),
        **(env or {}),
    }

    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "burnlink.web.app:app_from_environment",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--log-level",
            "debug",
            # As `burnlink serve` does: uvicorn must not rewrite the peer from X-Forwarded-For
            # (it would by default, for a peer on 127.0.0.1); burnlink.clientip decides alone.
            "--no-proxy-headers",
        ]

    with _started(command, environment, log_path) as running:
        yield running


@contextmanager
def started(
    command: Callable[[int], list[str]], environment: dict[str, str], log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Any server command, ``command(port)``, started on a free port with ``environment``, its
    output in ``log_path``; yields its base URL and process once it answers ``/healthz``, and
    stops it on the way out. For servers not run from this environment's ``burnlink`` (an
    installed copy, a launcher that changes the process first)."""
    with _started(command, environment, log_path) as running:
        yield running


class _PortTaken(Exception):
    """The server could not bind its port: another process took it after ``free_port``."""


@contextmanager
def _started(
    command: Callable[[int], list[str]], environment: dict[str, str], log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``command(port)`` on a free port, its output appended to ``log_path``; yield its
    base URL and process once it answers ``/healthz``; stop it on the way out.

    A free port is free only until someone binds it, and other test workers (or suites) pick
    ports too: a server that finds its port taken is started again on another.
    """
    for _ in range(3):
        port = free_port()
        start = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed argv
                command(port), env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(base, process, log_path, start)
        except _PortTaken:
            continue
        except BaseException:
            stop_process(process)
            raise
        try:
            yield base, process
        finally:
            stop_process(process)
        return
    raise RuntimeError("three free ports in a row were taken before the server bound them")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a server process: SIGTERM, then SIGKILL after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - only if shutdown hangs
        process.kill()
        process.wait()


def _wait_until_healthy(
    base: str, process: subprocess.Popen[bytes], log_path: Path, start: int
) -> None:
    """Return once ``process`` answers ``/healthz`` on ``base``: a 200 counts only once its
    log (from offset ``start``) says it listens there, as another process may hold the port."""
    # "running on http://<the address it binds>:<port> ": 127.0.0.1, or 0.0.0.0 for a test
    # that reaches it from another address too.
    listening = re.compile(rb"running on https?://\S+:" + base.rsplit(":", 1)[1].encode() + rb" ")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with log_path.open("rb") as log:
                log.seek(start)
                if b"address already in use" in log.read().lower():
                    raise _PortTaken
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                with log_path.open("rb") as log:
                    log.seek(start)
                    if listening.search(log.read()):
                        return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not become healthy in {START_TIMEOUT:.0f} s")


@contextmanager
def serve_process(
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    open_files: int | None = None,
    hard_open_files: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``burnlink serve`` on ``memory://`` exactly as a user would; yield its base URL and
    process.

    ``open_files`` starts it with that soft limit on open files (the common default is 1024),
    as a shell's ``ulimit -Sn`` would; ``hard_open_files`` lowers the hard limit too.
    """
    environment = {
        **os.environ,
        "BURNLINK_LOG_LEVEL": "debug",
        "BURNLINK_KEY_DIR": str(log_path.parent / "keys"),
        **(env or {}),
    }
    # As `ulimit -Sn N; burnlink serve`, without a shell or a preexec_fn (unsafe with threads).
    launcher = (
        "import resource, runpy\n"
        f"soft, hard = {open_files!r}, {hard_open_files!r}\n"
        "old_soft, old_hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (soft or old_soft, hard or old_hard))\n"
        "runpy.run_module('burnlink', run_name='__main__', alter_sys=True)\n"
    )

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-c", launcher, "serve", "--store", "memory://"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ]

    with _started(command, environment, log_path) as running:
        yield running
