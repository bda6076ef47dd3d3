"""A real reverse proxy (Debian's nginx) in front of a real ``burnlink serve``, for the tests of
who the client is (docs/access.md).

nginx runs in the foreground as the current user, with its configuration, pid file, logs and
temporary files under the test's own directory. Without ``/usr/sbin/nginx`` the tests that
need it skip and say how to install it; with ``CI=true`` they fail (``scripts/test`` installs
it there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.servers import START_TIMEOUT, free_port, stop_process

NGINX = os.environ.get("BURNLINK_TEST_NGINX", "/usr/sbin/nginx")

# What nginx tells burnlink about the client, per BURNLINK_PROXY_HEADER: the settings an
# operator would copy from docs/access.md.
PROXY_CONFIG = {
    "x-forwarded-for": "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "forwarded": "proxy_set_header Forwarded $burnlink_forwarded;",
    "x-real-ip": "proxy_set_header X-Real-IP $remote_addr;",
}

# RFC 7239 wants an IPv6 node quoted and bracketed; a client's own Forwarded stays on the left.
_FORWARDED_MAPS = r"""
    map $remote_addr $burnlink_forwarded_for {
        "~:"     "for=\"[$remote_addr]\"";
        default  "for=$remote_addr";
    }
    map $http_forwarded $burnlink_forwarded {
        ""       "$burnlink_forwarded_for";
        default  "$http_forwarded, $burnlink_forwarded_for";
    }
"""


def require_nginx() -> str:
    """The nginx binary; skip (or, on CI, fail) the calling test without it."""
    if os.access(NGINX, os.X_OK):
        return NGINX
    message = f"nginx is not installed at {NGINX}: apt-get install nginx-light (scripts/test does)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def burnlink_serve(folder: Path, env: dict[str, str]) -> Iterator[str]:
    """``burnlink serve`` (the command operators run, with its uvicorn options) on a free
    loopback port, its output in ``folder/burnlink.log``; yields its base URL."""
    port = free_port()
    environment = {
        **os.environ,
        "BURNLINK_STORE": "memory://",
        "BURNLINK_KEY_DIR": str(folder / "keys"),
        "BURNLINK_LOG_LEVEL": "warning",
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "burnlink",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = (folder / "burnlink.log").open("ab")
    process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - fixed argv
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until(f"{base}/healthz", process, folder / "burnlink.log")
        yield base
    finally:
        stop_process(process)
        log.close()


@contextmanager
def nginx_proxy(folder: Path, upstream: str, header: str) -> Iterator[int]:
    """nginx on a free port of 127.0.0.1 and ::1, passing every request to ``upstream`` and
    naming the client in ``header`` (a key of ``PROXY_CONFIG``); yields the port."""
    port = free_port()
    server = f"""
    {_FORWARDED_MAPS if header == "forwarded" else ""}
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $http_host;
            {PROXY_CONFIG[header]}
        }}
    }}
"""
    with _nginx(folder, server, f"http://127.0.0.1:{port}/healthz"):
        yield port


@contextmanager
def nginx_tls_proxy(
    folder: Path, upstreams: list[str], certificate: Path, key: Path, *, port: int | None = None
) -> Iterator[int]:
    """nginx terminating TLS (``certificate``, ``key``) on a free port of 127.0.0.1 and ::1,
    spreading requests over ``upstreams`` in turn and naming the client in X-Forwarded-For,
    as docs/operations.md's recipe does, on ``port`` (default: a free one); yields the port."""
    port = port or free_port()
    members = "\n".join(
        f"        server {upstream.removeprefix('http://')};" for upstream in upstreams
    )
    server = f"""
    upstream burnlink {{
{members}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        listen [::1]:{port} ssl;
        ssl_certificate {certificate};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass http://burnlink;
            proxy_set_header Host $http_host;
            {PROXY_CONFIG["x-forwarded-for"]}
        }}
    }}
"""
    with _nginx(folder, server, f"https://127.0.0.1:{port}/healthz"):
        yield port


@contextmanager
def _nginx(folder: Path, server: str, probe: str) -> Iterator[None]:
    """nginx in the foreground with ``server`` as its http block's servers, until the block
    ends; ``probe`` must answer 200 first."""
    binary = require_nginx()
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(
        f"""
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{server}
}}
""",
        encoding="utf-8",
    )
    command = [binary, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # noqa: S603 - fixed argv
    try:
        _wait_until(probe, process, folder / "error.log")
        yield
    finally:
        stop_process(process)


def _wait_until(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            raise RuntimeError(f"{url}: exited with {process.returncode}\n{text}")
        try:
            if httpx.get(url, timeout=1, verify=False).status_code == 200:  # noqa: S501 - a probe
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {START_TIMEOUT:.0f} s")
