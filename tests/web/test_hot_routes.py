"""The hot routes (``web.hot_routes``) mirror the FastAPI routes that document them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from burnlink.clock import FrozenClock
from burnlink.config import Settings
from burnlink.errors import SecretUnavailable, StorageUnavailable
from burnlink.store.memory import MemoryStore
from burnlink.web import api
from burnlink.web.app import BurnlinkApp, create_app
from burnlink.web.hot_routes import HOT_ROUTES, HotRoute, HotRoutes
from tests.web.conftest import client_of

pytestmark = pytest.mark.anyio


def _documented(hot: HotRoute) -> APIRoute:
    for route in api.router.routes:
        if (
            isinstance(route, APIRoute)
            and route.path == hot.path
            and hot.method in (route.methods or ())
        ):
            return route
    raise AssertionError(f"no FastAPI route for {hot.method} {hot.path}")


@pytest.mark.parametrize("hot", HOT_ROUTES, ids=lambda hot: hot.path)
async def test_hot_route_mirrors_its_documented_route(app: FastAPI, hot: HotRoute) -> None:
    route = _documented(hot)
    assert (route.status_code or 200) == hot.status
    assert route.response_model is hot.response
    assert route.body_field is not None
    assert route.body_field.field_info.annotation is hot.body
    assert not route.dependencies
    assert app.openapi()["paths"][hot.path][hot.method.lower()]  # documented by FastAPI


async def test_hot_route_answers_like_fastapi_when_the_body_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """A body the hot path cannot take goes to FastAPI, whose answers it keeps exactly."""
    duplicate = await client.post(
        "/api/v1/secrets",
        content=b'{"secret": "a", "secret": "b"}',
        headers={"content-type": "application/json"},
    )
    invalid = await client.post("/api/v1/secrets", json={"secret": "a", "ttl": "soon"})
    empty = await client.post(
        "/api/v1/secrets/abc/reveal", content=b"", headers={"content-type": "application/json"}
    )
    assert duplicate.status_code == 400
    assert duplicate.json()["error"]["code"] == "malformed_json"
    assert invalid.status_code == 422
    assert invalid.json()["error"]["field"] == "ttl"
    assert empty.status_code == 422
    assert "x-request-id" in duplicate.headers
    assert duplicate.headers["cache-control"] == "no-store"


async def test_hot_route_answers_create_and_reveal(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/secrets", json={"secret": "hunter2"})
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/json"
    url = created.json()["url"]
    secret_id, key = url.rsplit("/", 1)[1].split("#")
    revealed = await client.post(f"/api/v1/secrets/{secret_id}/reveal", json={"key": key})
    assert revealed.status_code == 200
    assert revealed.json() == {"secret": "hunter2", "file": None, "views_left": 0}
    assert revealed.headers["x-frame-options"] == "DENY"


async def test_hot_route_failures_answer_byte_for_byte_as_fastapi(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    memory_store: MemoryStore,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handlers the hot routes call themselves answer as FastAPI's exception middleware
    does: same status, headers (in order) and body, for a handler's answer (404, 413, 503)."""
    plain = create_app(settings, memory_store, clock)
    assert isinstance(plain, BurnlinkApp)
    assert plain.edge is not None
    plain.edge.hot_routes = None  # every request through FastAPI
    looked_up: list[type[Exception]] = []
    handler_of = HotRoutes._handler_of

    def spied(self: HotRoutes, exc: Exception) -> Callable[..., Any] | None:
        looked_up.append(type(exc))
        return handler_of(self, exc)

    monkeypatch.setattr(HotRoutes, "_handler_of", spied)
    async with client_of(plain) as through_fastapi:
        created = await client.post("/api/v1/secrets", json={"secret": "hunter2"})
        secret_id, key = created.json()["url"].rsplit("/", 1)[1].split("#")
        await client.post(f"/api/v1/secrets/{secret_id}/reveal", json={"key": key})

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"z" * (16 * 1024)

        async def broken(*args: object, **kwargs: object) -> None:
            raise StorageUnavailable

        async def answers(http: httpx.AsyncClient) -> list[tuple[int, list[Any], bytes]]:
            gone = await http.post(f"/api/v1/secrets/{secret_id}/reveal", json={"key": key})
            big = await http.post(
                "/api/v1/secrets", content=chunks(), headers={"content-type": "application/json"}
            )
            with monkeypatch.context() as patch:
                patch.setattr(memory_store, "create", broken)
                down = await http.post("/api/v1/secrets", json={"secret": "x"})
            return [
                (
                    r.status_code,
                    [h for h in r.headers.raw if h[0].lower() != b"x-request-id"],
                    r.content,
                )
                for r in (gone, big, down)
            ]

        hot = await answers(client)
        assert looked_up == [SecretUnavailable, HTTPException, StorageUnavailable]
        assert [status for status, _, _ in hot] == [404, 413, 503]
        assert hot == await answers(through_fastapi)
        assert len(looked_up) == 3  # the plain app never reached the hot routes
