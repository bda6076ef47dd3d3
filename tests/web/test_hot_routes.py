"""The hot routes (``web.hot_routes``) mirror the FastAPI routes that document them."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from burnlink.web import api
from burnlink.web.hot_routes import HOT_ROUTES, HotRoute

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
