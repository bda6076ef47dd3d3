"""Real ``burnlink`` server processes for tests that need more than one process or a real port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


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
    port = free_port()
    environment = {
        **os.environ,
        "BURNLINK_STORE": store,
        "BURNLINK_LOG_LEVEL": "debug",
        # Generated audit and signing keys go beside the log, never to the user's data dir;
        # servers started with the same log_path folder share them (and so one audit log).
        "BURNLINK_KEY_DIR": str(log_path.parent / "keys"),
        **(env or {}),
    }
    command = [
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
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - fixed argv
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if shutdown hangs
            process.kill()
            process.wait()


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not become healthy in 20 s")


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
    port = free_port()
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
    command = [
        *(sys.executable, "-c", launcher, "serve", "--store", "memory://"),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - fixed argv
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if shutdown hangs
            process.kill()
            process.wait()
