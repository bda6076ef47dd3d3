"""Every failure answers in the one error shape, with the right status, and never a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import Message

from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.crypto import Payload, seal
from burnlink.ids import b64url_encode
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app
from burnlink.web.json_body import StrictJSONRoute

pytestmark = pytest.mark.anyio

# A well-formed id that no secret has; a constant, as it lands in test ids, which every
# pytest-xdist worker must collect alike.
SID = "bTkYIbg5BmR79iKfBBjJnA"
TID = "tok_bTkYIbg5BmR79iKf"
ROUTES = [
    ("GET", "/api/v1/policy"),
    ("POST", "/api/v1/secrets"),
    ("POST", f"/api/v1/secrets/{SID}/reveal"),
    ("GET", f"/api/v1/secrets/{SID}"),
    ("POST", f"/api/v1/secrets/{SID}/consume"),
    ("GET", f"/api/v1/secrets/{SID}/receipt"),
    ("DELETE", f"/api/v1/secrets/{SID}"),
    ("GET", "/api/v1/audit"),
    ("POST", "/api/v1/me/tokens"),
    ("GET", "/api/v1/me/tokens"),
    ("DELETE", f"/api/v1/me/tokens/{TID}"),
    ("DELETE", f"/api/v1/admin/tokens/{TID}"),
    ("GET", "/api/v1/admin/session"),
    ("GET", "/api/v1/admin/activity"),
    ("GET", "/api/v1/admin/audit/export"),
    ("GET", "/api/v1/admin/tokens"),
    ("GET", "/api/v1/admin/policy"),
    ("GET", "/api/v1/me/secrets"),
    ("GET", f"/api/v1/me/secrets/{SID}"),
    ("DELETE", f"/api/v1/me/secrets/{SID}"),
    ("POST", "/api/v1/me/secrets/burn"),
    ("POST", "/api/v1/requests"),
    ("GET", f"/api/v1/requests/{SID}"),
    ("POST", f"/api/v1/requests/{SID}/answer"),
    ("GET", f"/api/v1/requests/{SID}/status"),
    ("POST", f"/api/v1/requests/{SID}/open"),
]


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def test_every_api_route_is_walked(app: FastAPI) -> None:
    """The walk below covers every API route the OpenAPI document lists."""
    listed = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in operations
    }
    walked = {
        (m, p.replace(SID, "{request_id}" if "/requests/" in p else "{secret_id}"))
        for m, p in ROUTES
    }
    walked = {(m, p.replace(TID, "{token_id}")) for m, p in walked}

    assert listed == walked


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_answers_unknown_secrets_in_the_error_shape(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    body = {"key": "A" * 43} if path.endswith("/reveal") else None
    response = await client.request(
        method, path, json=body, headers={"authorization": "Bearer " + "A" * 43}
    )

    if path == "/api/v1/policy":
        assert response.status_code == 200
    elif path == "/api/v1/audit" or path.startswith("/api/v1/admin/"):
        assert_error_shape(response, 401, "unauthorized")
    elif path.startswith("/api/v1/me/"):
        assert_error_shape(response, 401, "login_required")
    elif path in ("/api/v1/secrets", "/api/v1/requests") or path.endswith("/answer"):
        assert_error_shape(response, 422, "invalid_field")
    else:
        assert_error_shape(response, 404, "not_found")


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[0] == "POST"])
async def test_malformed_json_is_400(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(
        method, path, content=b'{"secret": ', headers={"content-type": "application/json"}
    )

    assert_error_shape(response, 400, "malformed_json")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_non_json_body_is_415(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post(
        "/api/v1/secrets", content=b'{"secret": "x"}', headers={"content-type": content_type}
    )

    assert_error_shape(response, 415, "unsupported_media_type")


async def test_json_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/secrets",
        content=b'{"secret": "x"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 201


async def test_declared_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/secrets",
        content=b"x" * (200 * 1024),
        headers={"content-type": "application/json"},
    )

    error = assert_error_shape(response, 413, "payload_too_large")
    assert "x" * 20 not in error["message"]


async def test_chunked_oversize_body_is_413_without_reading_it_all(
    client: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"secret": "'
        for _ in range(10_000):
            sent += 16 * 1024
            yield b"y" * (16 * 1024)
        yield b'"}'

    response = await client.post(
        "/api/v1/secrets", content=chunks(), headers={"content-type": "application/json"}
    )

    assert_error_shape(response, 413, "payload_too_large")
    assert sent < 1024 * 1024  # stopped long before the 160 MiB the client offered


async def test_invalid_content_length_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/secrets",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "nope"},
    )

    assert_error_shape(response, 400, "bad_request")


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    assert_error_shape(await client.get("/api/v2/secrets"), 404, "not_found")


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    assert_error_shape(await client.put("/api/v1/secrets", json={}), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        # Two routes share this path (info and burn): a 405 names both (RFC 9110, 15.5.6).
        pytest.param("OPTIONS", "/api/v1/secrets/AAAAAAAAAAAAAAAAAAAAAA", "DELETE, GET", id="two"),
        pytest.param("PUT", "/api/v1/secrets", "POST", id="one"),
        pytest.param("POST", "/openapi.json", "GET, HEAD", id="framework-route"),
    ],
)
async def test_405_allow_names_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)

    assert_error_shape(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="array"),
        pytest.param("secret", id="string"),
        pytest.param(None, id="null"),
        pytest.param({"secret": {"nested": True}}, id="nested-secret"),
        pytest.param({"secret": ["a"]}, id="list-secret"),
        pytest.param({"secret": "x", "ttl": None, "max_views": True}, id="bool-views"),
        pytest.param({"secret": "x", "ttl": -(10**30)}, id="huge-negative"),
        pytest.param({"envelope": "nope", "access_token": "A" * 43}, id="envelope-string"),
        pytest.param(
            {
                "envelope": {"v": 1, "alg": "A256GCM", "kdf": "none", "nonce": "", "ct": ""},
                "access_token": "A" * 43,
            },
            id="envelope-empty-fields",
        ),
        pytest.param({"secret": "x", "passphrase": "p" * 5000}, id="long-passphrase"),
    ],
)
async def test_garbage_bodies_get_4xx_never_500(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/api/v1/secrets", json=body)

    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"error"}


async def test_error_messages_never_echo_ids_keys_or_content(client: httpx.AsyncClient) -> None:
    marker = "MARKER-" + "z" * 10
    created = await client.post("/api/v1/secrets", json={"secret": marker, "passphrase": "pw"})
    key = created.json()["url"].split("#")[1]
    secret_id = created.json()["id"]
    responses = [
        await client.post(f"/api/v1/secrets/{secret_id}/reveal", json={"key": key}),
        await client.post(
            f"/api/v1/secrets/{secret_id}/reveal", json={"key": key, "passphrase": "wrong-pw"}
        ),
        await client.post(f"/api/v1/secrets/{secret_id}/reveal", json={"key": key + "x"}),
        await client.post("/api/v1/secrets", json={"secret": marker, "ttl": 1}),
        await client.post("/api/v1/secrets", json={"secret": marker, "max_views": 10_000}),
    ]

    for response in responses:
        assert response.status_code >= 400
        for needle in (marker, key, secret_id, "wrong-pw"):
            assert needle not in response.text


async def test_store_failure_is_503(client: httpx.AsyncClient, app: FastAPI) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        from burnlink.errors import StorageUnavailable

        raise StorageUnavailable

    app.state.service.store.create = broken
    app.state.service.store.ping = broken

    created = await client.post("/api/v1/secrets", json={"secret": "x"})
    ready = await client.get("/readyz")
    live = await client.get("/healthz")

    assert_error_shape(created, 503, "store_unavailable")
    assert (ready.status_code, ready.json()["status"]) == (503, "unavailable")
    assert ready.json()["checks"] == {"store": "unavailable", "audit": "ok"}
    assert (live.status_code, live.json()) == (503, {"status": "unavailable"})


async def test_store_failure_logs_name_the_store_and_the_cause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The client's answer stays generic; the operator's log says which store and why."""
    settings = load_settings(store=f"sqlite:///{tmp_path}/burnlink.db")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://burnlink.test") as client,
    ):
        await app.state.service.store.aclose()  # the real store, closed under the server
        with caplog.at_level(logging.WARNING, logger="burnlink.web"):
            ready = await client.get("/readyz")
            created = await client.post("/api/v1/secrets", json={"secret": "x"})

    assert ready.status_code == 503
    assert_error_shape(created, 503, "store_unavailable")
    assert str(tmp_path) not in created.text
    logged = [r.getMessage() for r in caplog.records if r.name == "burnlink.web"]
    where = f"the secret store sqlite:///{tmp_path}/burnlink.db: StorageUnavailable: The SQLite"
    assert any(line.startswith("store check failed: " + where) for line in logged), logged
    assert any(line.startswith(where) for line in logged), logged


async def test_unexpected_errors_are_bare_500s_with_headers_and_no_detail_logged(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "MARKER-" + "detail-that-could-be-a-secret"

    async def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(marker)

    app.state.service.store.create = explode

    response = await client.post("/api/v1/secrets", json={"secret": "x"})

    assert_error_shape(response, 500, "internal_error")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert marker not in response.text
    assert "RuntimeError" in caplog.text
    assert marker not in caplog.text
    assert len(unexpected_errors_logged(caplog)) == 1


def unexpected_errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "burnlink.web" and r.getMessage().startswith("unexpected error")
    ]


async def test_unexpected_errors_off_the_hot_routes_are_the_same_500_logged_once(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """FastAPI's ServerErrorMiddleware answers these now (Edge is in front of it): the same
    answer as from Edge, and the one log line is still Edge's."""
    marker = "MARKER-" + "detail-that-could-be-a-secret"

    async def explode() -> None:
        raise RuntimeError(marker)

    app.add_api_route("/api/v1/test-explode", explode)
    caplog.set_level(logging.INFO)

    response = await client.get("/api/v1/test-explode")

    assert_error_shape(response, 500, "internal_error")
    assert response.json()["error"]["message"] == "An unexpected error occurred."
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    [logged] = unexpected_errors_logged(caplog)
    assert logged.startswith("unexpected error RuntimeError\n")
    assert marker not in caplog.text
    [line] = [r for r in caplog.records if r.name == "burnlink.access"]
    assert line.fields["status"] == 500  # type: ignore[attr-defined]  # set through ``extra``


async def test_an_unexpected_error_after_the_answer_started_is_logged_once_not_answered(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """The client keeps the start it got (no second start, no 500 body) and the access line
    says what it got."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        raise RuntimeError("mid-answer")

    async def streamed() -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/plain")

    app.add_api_route("/api/v1/test-streamed", streamed)
    caplog.set_level(logging.INFO)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/api/v1/test-streamed", "raw_path": b"/api/v1/test-streamed",
        "query_string": b"", "root_path": "", "headers": [(b"host", b"burnlink.test")],
        "client": ("203.0.113.7", 50000), "server": ("burnlink.test", 80), "state": {},
    }  # fmt: skip
    sent: list[Message] = []

    given = False

    async def receive() -> Message:
        nonlocal given
        if given:
            await anyio.Event().wait()  # the client stays
        given = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)

    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [200]
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"first"
    assert len(unexpected_errors_logged(caplog)) == 1
    [line] = [r for r in caplog.records if r.name == "burnlink.access"]
    assert line.fields["status"] == 200  # type: ignore[attr-defined]  # set through ``extra``


async def test_lone_surrogate_secret_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/secrets",
        content=b'{"secret": "\\ud800"}',
        headers={"content-type": "application/json"},
    )

    assert assert_error_shape(response, 422, "invalid_field")["field"] == "secret"


async def test_streamed_413_names_the_limit(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"z" * (16 * 1024)

    response = await client.post(
        "/api/v1/secrets", content=chunks(), headers={"content-type": "application/json"}
    )

    error = assert_error_shape(response, 413, "payload_too_large")
    assert error["limit"] == 64 * 1024 * 4 // 3 + 64 * 1024


# -- JSON that parses two ways, and what an error echoes --------------------------------------


def duplicated(name: str, first: object, second: object, rest: str) -> bytes:
    """A body whose object gives ``name`` twice (``json.dumps`` cannot write one)."""
    return f'{{"{name}": {json.dumps(first)}, "{name}": {json.dumps(second)}{rest}}}'.encode()


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[0] == "POST"])
async def test_duplicate_json_names_are_refused_on_every_json_route(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """Python keeps the last of two equal names, other parsers the first: a body that means
    two things is refused whole, naming the member."""
    rest = ', "secret": "x"' if path == "/api/v1/secrets" else ""
    body = duplicated("max_views" if rest else "key", 1 if rest else "A" * 43, 2, rest)

    response = await client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )

    error = assert_error_shape(response, 400, "malformed_json")
    assert error["field"] == ("max_views" if rest else "key")
    assert "appears twice" in error["message"]


async def test_duplicate_json_names_are_refused_inside_nested_objects(
    client: httpx.AsyncClient,
) -> None:
    sealed = seal(Payload(b"twice"), bytes(range(32)))
    envelope = json.dumps(sealed.envelope.to_json())[1:-1]
    token = b64url_encode(sealed.keys.access_token)
    body = f'{{"envelope": {{{envelope}, "v": 1}}, "access_token": "{token}"}}'.encode()

    response = await client.post(
        "/api/v1/secrets", content=body, headers={"content-type": "application/json"}
    )

    assert assert_error_shape(response, 400, "malformed_json")["field"] == "v"


async def test_no_secret_is_created_from_a_body_with_duplicate_names(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    body = duplicated("max_views", 1, 50, ', "secret": "x"')

    response = await client.post(
        "/api/v1/secrets", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert await memory_store.purge_expired(now=clock.now() + timedelta(days=400), limit=10) == 0


def api_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """Every ``APIRoute`` in ``routes``, looking inside included routers."""
    found: list[APIRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included router
        if included is not None:
            found += api_routes(included.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def test_every_route_parses_json_strictly(app: FastAPI) -> None:
    """A route added later gets the strict parser too, or this fails."""
    routes = api_routes(app.routes)

    assert {"/api/v1/secrets", "/api/v1/audit", "/s/{secret_id}"} <= {r.path for r in routes}
    assert [r.path for r in routes if not isinstance(r, StrictJSONRoute)] == []


async def test_unknown_field_names_are_echoed_but_cut_short(client: httpx.AsyncClient) -> None:
    name = "x" * 10_000

    response = await client.post("/api/v1/secrets", json={"secret": "x", name: 1})

    error = assert_error_shape(response, 422, "invalid_field")
    assert error["field"].startswith("xxxx")
    assert error["field"].endswith("…")
    assert len(error["field"]) <= 128
    assert len(error["message"]) < 300
    short = await client.post("/api/v1/secrets", json={"secret": "x", "colour": 1})
    assert assert_error_shape(short, 422, "invalid_field")["field"] == "colour"
