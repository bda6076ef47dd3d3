"""A ``redis-server`` of the tests' own, on a free port in a temporary directory: killed,
frozen and restarted at will, never the shared server. Without the binary the calling test
skips with what to install, or fails when ``CI=true``."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
import redis
from cryptography import x509

from tests.certificates import self_signed
from tests.servers import START_TIMEOUT, free_port

_HOW_TO_INSTALL = "redis-server is not installed: apt-get install redis-server"


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class PrivateRedis:
    """A redis-server of our own with an append-only file, killed and restarted at will.

    ``appendfsync always``: with ``everysec`` Redis may postpone writing the file while a
    background fsync runs and still reply, and a ``kill -9`` then loses an acknowledged
    secret (a fault test saw it happen); only ``always`` keeps every acknowledged write.

    With ``tls``, it listens for TLS only, with a certificate for 127.0.0.1 that ``ca_file``
    (the certificate itself) verifies.
    """

    def __init__(self, directory: Path, *, tls: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.tls = tls
        self.ca_file = directory / "redis.crt"
        self.process: subprocess.Popen[bytes] | None = None
        if tls:
            address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            self_signed(self.ca_file, directory / "redis.key", address, ca=True)

    @property
    def url(self) -> str:
        """A store URL for it (without a key prefix)."""
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_file}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again: same port, same directory, so it replays its append-only file)
        and return once it answers."""
        listen = ["--port", str(self.port)]
        if self.tls:
            listen = [
                "--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", str(self.ca_file),
                "--tls-key-file", str(self.directory / "redis.key"),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        command = [
            "redis-server", *listen, "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--protected-mode", "yes", "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - fixed argv
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def signal(self, number: signal.Signals) -> None:
        """Send it ``number`` (``SIGSTOP`` freezes it: it accepts, but never answers)."""
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, no final fsync."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def private_redis(directory: Path, *, tls: bool = False) -> Iterator[PrivateRedis]:
    """A started ``PrivateRedis`` in ``directory`` (created), killed on the way out."""
    if shutil.which("redis-server") is None:
        _unavailable(_HOW_TO_INSTALL)
    directory.mkdir()
    server = PrivateRedis(directory, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.kill()
