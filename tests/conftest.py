"""Shared fixtures: a frozen clock, and the ``store`` fixture over every backend (a Redis
Cluster of our own among them)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from burnlink.clock import FrozenClock
from burnlink.store import SecretStore, open_store
from tests import services
from tests.mail import outbox as outbox  # a fixture, shared by the verification tests
from tests.store.redis_cluster import LocalCluster, running_cluster

RETENTION = timedelta(days=30)
BACKENDS = ["memory", "sqlite", "redis", "redis-cluster", "postgres"]
MODULE_WHOLE_DISTRIBUTIONS = {"no", "loadfile", "loadscope"}
"""pytest-xdist modes that run each test module whole on one worker, as scripts/test does
(--dist loadfile). Modules share expensive module fixtures (a ``burnlink serve`` with short
deadlines, nginx, Chromium, 1,200 seeded secrets), and the fuzz test checks, at its fixture's
teardown, the requests generated over the whole module: a check a split module would skip.
--dist loadgroup would not do: pytest-xdist 3.8.0 marks a group in ``item._nodeid``, which
pytest 9 no longer reads, so it hands out single tests."""


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a pytest-xdist mode that would split a test module between workers."""
    dist = getattr(config.option, "dist", "no")
    if dist not in MODULE_WHOLE_DISTRIBUTIONS:
        raise pytest.UsageError(
            f"--dist {dist} splits test modules between workers; use --dist loadfile "
            "(as bash scripts/test does)"
        )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    services.require("postgres")
    import psycopg

    name = f"burnlink_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(services.POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = services.POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(services.POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A three-master Redis Cluster of our own for this session (``tests.store.redis_cluster``);
    skips without ``redis-server``, fails without it when ``CI=true``."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_audit_url(postgres_database: str) -> Iterator[str]:
    """A URL whose ``search_path`` is a fresh schema of the session database (audit logs)."""
    import psycopg

    schema = f"audit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_database, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _truncate_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables))


def _delete_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(services.REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL for ``backend``; cleanup is registered on ``request``."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite://{tmp_path / 'burnlink.db'}"
    if backend == "redis":
        services.require("redis")
        prefix = f"burnlink-test-{uuid.uuid4().hex[:12]}:"
        request.addfinalizer(lambda: _delete_redis_prefix(prefix))
        return f"{services.REDIS_URL}?prefix={prefix}"
    if backend == "redis-cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        prefix = f"burnlink-test-{uuid.uuid4().hex[:12]}:"
        request.addfinalizer(lambda: cluster.delete_prefix(prefix))
        return f"{cluster.url}?prefix={prefix}"
    if backend == "postgres":
        url: str = request.getfixturevalue("postgres_database")
        _truncate_postgres(url)
        return url
    raise AssertionError(backend)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SecretStore]:
    """An empty store of each backend, closed after the test."""
    opened = await open_store(store_url(backend, request, tmp_path), retention=RETENTION)
    try:
        yield opened
    finally:
        await opened.aclose()
