"""One real burnlink server (uvicorn in a thread, memory store) for the whole CLI suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.harness import Cli, running_server, server_settings


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The base URL of a running server; secrets from every test share it."""
    settings = server_settings()
    with running_server(settings) as base:
        yield base


@pytest.fixture
def cli(server: str) -> Cli:
    """Runs ``burnlink`` against ``server``."""
    return Cli(server)
