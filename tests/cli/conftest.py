"""One real burnlink server (uvicorn in a thread, memory store) for the whole CLI suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from burnlink.config import load_settings
from tests.cli.harness import MAX_BYTES, Cli, running_server


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The base URL of a running server; secrets from every test share it."""
    # Every test comes from 127.0.0.1: rate limits would refuse the suite itself.
    settings = load_settings(
        store="memory://",
        max_bytes=MAX_BYTES,
        sweep_interval=3600,
        rate_limit_create="off",
        rate_limit_reveal="off",
        rate_limit_failures="off",
        rate_limit_secret_failures="off",
    )
    with running_server(settings) as base:
        yield base


@pytest.fixture
def cli(server: str) -> Cli:
    """Runs ``burnlink`` against ``server``."""
    return Cli(server)
