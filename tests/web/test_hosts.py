"""The ``Host`` header: refused unless ``BURNLINK_ALLOWED_HOSTS`` lists it, and never the
source of a redirect (docs/configuration.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client_of(clock: FrozenClock) -> AsyncIterator[Any]:
    """Builds one app from settings and yields a client of it."""
    opened: list[tuple[Any, httpx.AsyncClient]] = []

    async def make(**settings: str) -> httpx.AsyncClient:
        app = create_app(
            load_settings(store="memory://", **settings),
            MemoryStore(retention=timedelta(days=1)),
            clock,
        )
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://secrets.example.com"
        )
        opened.append((context, client))
        return client

    yield make
    for context, client in opened:
        await client.aclose()
        await context.__aexit__(None, None, None)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("evil.example", id="other-name"),
        pytest.param("secrets.example.com:8443", id="other-port"),
        pytest.param("secrets.example.com.evil.example", id="suffix"),
        pytest.param("secrets.example.com@evil.example", id="userinfo"),
        pytest.param("", id="empty"),
    ],
)
async def test_unlisted_host_is_refused_before_anything_happens(client_of: Any, host: str) -> None:
    client = await client_of(allowed_hosts="secrets.example.com")

    created = await client.post("/api/v1/secrets", json={"secret": "x"}, headers={"host": host})
    health = await client.get("/healthz", headers={"host": host})
    page = await client.get("/", headers={"host": host})

    for response in (created, health, page):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "host_not_allowed"
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_listed_host_decides_the_links(client_of: Any) -> None:
    client = await client_of(allowed_hosts="secrets.example.com, burnlink.internal:8000")

    public = await client.post(
        "/api/v1/secrets", json={"secret": "x"}, headers={"host": "Secrets.Example.COM"}
    )
    internal = await client.post(
        "/api/v1/secrets", json={"secret": "x"}, headers={"host": "burnlink.internal:8000"}
    )

    assert public.status_code == internal.status_code == 201
    assert public.json()["url"].lower().startswith("http://secrets.example.com/s/")
    assert internal.json()["url"].startswith("http://burnlink.internal:8000/s/")


async def test_two_host_lines_are_refused(client_of: Any) -> None:
    client = await client_of(allowed_hosts="secrets.example.com")

    response = await client.get(
        "/healthz", headers=[("host", "secrets.example.com"), ("host", "evil.example")]
    )

    assert response.json()["error"]["code"] == "host_not_allowed"


@pytest.mark.parametrize("path", ["/api/v1/policy/", "/s/abc/", "/healthz/", "/docs/"])
async def test_trailing_slash_is_not_redirected_to_the_host(client_of: Any, path: str) -> None:
    client = await client_of(base_url="https://secrets.example.com")

    response = await client.get(path, headers={"host": "evil.example"})

    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["error"]["code"] == "not_found"
