"""A real burnlink server in a background thread, and a way to run the CLI against it."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from click.testing import CliRunner, Result

from burnlink.cli.main import main
from burnlink.clock import Clock
from burnlink.config import Settings, load_settings
from burnlink.store import SecretStore
from burnlink.web.app import create_app

START_TIMEOUT = 10.0
# The test server's BURNLINK_MAX_BYTES: small enough that a test can exceed it cheaply.
MAX_BYTES = 64 * 1024
# Variables a developer's shell may set that would change what the CLI does.
_CLEAN_ENV: dict[str, str | None] = {"BURNLINK_PASSPHRASE": None, "BURNLINK_SERVER": None}


def server_settings(**overrides: object) -> Settings:
    """Settings for a test server on the memory store. Every test comes from 127.0.0.1, so
    the rate limits are off: they would refuse the suite itself."""
    defaults: dict[str, object] = {
        "store": "memory://",
        "max_bytes": MAX_BYTES,
        "sweep_interval": 3600,
        "rate_limit_create": "off",
        "rate_limit_reveal": "off",
        "rate_limit_failures": "off",
        "rate_limit_secret_failures": "off",
    }
    return load_settings(**(defaults | overrides))


@contextmanager
def running_server(
    settings: Settings, clock: Clock | None = None, store: SecretStore | None = None
) -> Iterator[str]:
    """Serve ``create_app(settings)`` (on ``clock`` and ``store``, if given) on a free local
    port; yield its base URL."""
    config = uvicorn.Config(
        create_app(settings, store, clock=clock),
        host="127.0.0.1",
        port=0,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="burnlink-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)


@dataclass(frozen=True)
class Cli:
    """Runs ``burnlink`` in-process with click's runner, talking to ``server`` by default."""

    server: str

    def __call__(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        environment = {**_CLEAN_ENV, "BURNLINK_SERVER": self.server, **(env or {})}
        return CliRunner().invoke(main, list(args), input=input, env=environment)

    def share(self, secret: bytes, *options: str, env: Mapping[str, str] | None = None) -> str:
        """Share ``secret`` and return its link; fail the test if sharing fails."""
        result = self("share", *options, input=secret, env=env)
        assert result.exit_code == 0, result.stderr
        return result.stdout.strip()

    def share_json(self, secret: bytes, *options: str) -> dict[str, object]:
        """Share ``secret`` with ``--json`` and return the parsed output."""
        result = self("share", "--json", *options, input=secret)
        assert result.exit_code == 0, result.stderr
        parsed: dict[str, object] = json.loads(result.stdout)
        return parsed


def fragment(link: str) -> str:
    """The key (or token) part of a link."""
    return link.partition("#")[2]


def one_line(text: str) -> bool:
    """Whether ``text`` is exactly one line ending in a newline."""
    return text.count("\n") == 1 and text.endswith("\n")


def argv(*args: str) -> Sequence[str]:
    """``python -m burnlink ARGS``, for the tests that need a real process and real pipes."""
    return [sys.executable, "-m", "burnlink", *args]
