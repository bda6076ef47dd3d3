"""Exactly-once across two server processes sharing one store, on every persistent backend."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import store_url
from tests.servers import server_process

pytestmark = pytest.mark.anyio

READERS = 40


async def race(servers: list[str], views: int) -> list[int]:
    """Create a secret with ``views`` views, reveal it from READERS clients over all servers."""
    async with httpx.AsyncClient(timeout=30) as http:
        created = (
            await http.post(
                f"{servers[0]}/api/v1/secrets", json={"secret": "race", "max_views": views}
            )
        ).json()
        key = created["url"].split("#")[1]
        statuses: list[int] = []
        start = anyio.Event()

        async def reader(number: int) -> None:
            await start.wait()
            base = servers[number % len(servers)]
            response = await http.post(
                f"{base}/api/v1/secrets/{created['id']}/reveal", json={"key": key}
            )
            statuses.append(response.status_code)

        async with anyio.create_task_group() as group:
            for number in range(READERS):
                group.start_soon(reader, number)
            await anyio.sleep(0.05)
            start.set()
        return statuses


@pytest.mark.parametrize("backend", ["sqlite", "redis", "redis-cluster", "postgres"])
async def test_two_server_processes_reveal_exactly_min_k_v(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(backend, request, tmp_path)
    # One client address makes every request here: rate limits would refuse the race itself.
    unlimited = {
        "BURNLINK_RATE_LIMIT_REVEAL": "off",
        "BURNLINK_RATE_LIMIT_FAILURES": "off",
        "BURNLINK_RATE_LIMIT_SECRET_FAILURES": "off",
    }
    with (
        server_process(url, tmp_path / "a.log", env=unlimited) as first,
        server_process(url, tmp_path / "b.log", env=unlimited) as second,
    ):
        for views in (1, 3, 100):
            statuses = await race([first, second], views)
            assert statuses.count(200) == min(READERS, views), (views, statuses)
            assert set(statuses) <= {200, 404}


@pytest.mark.parametrize("backend", ["sqlite", "redis", "redis-cluster", "postgres"])
async def test_rate_limit_counters_are_shared_by_server_processes(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(backend, request, tmp_path)
    limit = {"BURNLINK_RATE_LIMIT_CREATE": "6/day"}
    with (
        server_process(url, tmp_path / "a.log", env=limit) as first,
        server_process(url, tmp_path / "b.log", env=limit) as second,
    ):
        async with httpx.AsyncClient(timeout=30) as http:
            statuses = [
                (await http.post(f"{base}/api/v1/secrets", json={"secret": "x"})).status_code
                for base in [first, second] * 4
            ]

    assert statuses == [201] * 6 + [429] * 2
