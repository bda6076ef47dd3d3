"""Each request gets an id (echoed in X-Request-ID, written into audit events) and one log line."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

pytestmark = pytest.mark.anyio


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "burnlink.access"]


async def test_every_request_gets_an_id_and_one_log_line(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await client.get("/api/v1/policy?x=query-marker")

    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", request_id)
    [line] = access_lines(caplog)
    fields = line.fields  # type: ignore[attr-defined]  # set through ``extra``
    assert line.getMessage() == "GET /api/v1/policy 200"
    assert fields["request_id"] == request_id
    assert (fields["method"], fields["path"], fields["status"]) == ("GET", "/api/v1/policy", 200)
    assert (fields["client_ip"], fields["agent"]) == ("203.0.113.7", "unknown")
    assert "query-marker" not in str(fields)


async def test_a_sane_client_request_id_is_kept_and_a_strange_one_replaced(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/healthz", headers={"x-request-id": "proxy-42.a"})
    replaced = await client.get("/healthz", headers={"x-request-id": "bad id;" * 20})

    assert kept.headers["x-request-id"] == "proxy-42.a"
    assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["x-request-id"])


async def test_errors_are_logged_with_their_status(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await client.post("/api/v1/secrets", json={"nope": 1})

    [line] = access_lines(caplog)
    assert line.fields["status"] == 422  # type: ignore[attr-defined]  # set through ``extra``
