"""Reaching the PostgreSQL and Redis servers the backend tests need.

With ``CI=true`` a missing server fails the run; elsewhere the tests that need it skip and
say what to start.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

REDIS_URL = os.environ.get("BURNLINK_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "BURNLINK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)

_HOW_TO_START = {
    "redis": "start Redis on 127.0.0.1:6379 (redis-server --daemonize yes) "
    "or set BURNLINK_TEST_REDIS",
    "postgres": "start PostgreSQL on 127.0.0.1:5432 with trust auth or set BURNLINK_TEST_POSTGRES",
}


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(service: str, host: str = "127.0.0.1", port: int | None = None) -> None:
    """Skip (or, on CI, fail) the calling test when ``service`` does not answer."""
    port = port or {"redis": 6379, "postgres": 5432}[service]
    if _port_open(host, port):
        return
    message = f"{service} is not reachable: {_HOW_TO_START[service]}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def new_postgres_database(prefix: str) -> Iterator[str]:
    """A brand-new PostgreSQL database named ``prefix`` and a random suffix, without any
    table; dropped on the way out. Skips (or, on CI, fails) without PostgreSQL."""
    require("postgres")
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
