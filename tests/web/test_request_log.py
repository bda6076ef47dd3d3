"""Each request gets an id (echoed in X-Request-ID, written into audit events) and one log line."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.handlers
import re
from collections.abc import Iterator

import httpx
import pytest

from burnlink.logs import configure_logging, write_line

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


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The server's logging set-up (``configure_logging``) writing to a buffer; the global
    logging state is put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@contextlib.contextmanager
def alone(stream: io.StringIO) -> Iterator[None]:
    """Only ``configure_logging``'s handler on the root logger: pytest puts its own capturing
    handlers there for every phase of a test."""
    root = logging.getLogger()
    saved = list(root.handlers)
    root.handlers[:] = [h for h in saved if getattr(h, "stream", None) is stream]
    try:
        yield
    finally:
        root.handlers[:] = saved


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_the_direct_request_line_is_the_line_the_logging_record_makes(
    client: httpx.AsyncClient, json_log: io.StringIO
) -> None:
    # configure_logging's handler alone: the line is written without a record.
    with alone(json_log):
        assert write_line(logging.getLogger("burnlink.access"), logging.INFO, "probe", {})
        await client.get("/api/v1/policy", headers={"user-agent": "curl/8.5.0"})
    # A filter anywhere on the way makes the request log go through logging as usual.
    access = logging.getLogger("burnlink.access")
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return True

    access.addFilter(keep)
    try:
        with alone(json_log):
            assert not write_line(access, logging.INFO, "probe", {})
            await client.get("/api/v1/policy", headers={"user-agent": "curl/8.5.0"})
    finally:
        access.removeFilter(keep)
    with alone(json_log):
        assert write_line(access, logging.DEBUG, "below the level: written nowhere", {})

    probe, direct, through_logging = _lines(json_log)
    assert probe["message"] == "probe"
    assert len(seen) == 1  # only the second went through a record
    for line in (direct, through_logging):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line.pop("time")))
        line.pop("duration_ms"), line.pop("request_id")
    assert direct == through_logging
    assert direct == {
        "level": "info",
        "logger": "burnlink.access",
        "message": "GET /api/v1/policy 200",
        "method": "GET",
        "path": "/api/v1/policy",
        "status": 200,
        "client_ip": "203.0.113.7",
        "agent": "cli",
    }


async def test_a_handler_added_to_the_request_log_gets_every_line(
    client: httpx.AsyncClient, json_log: io.StringIO
) -> None:
    access = logging.getLogger("burnlink.access")
    added = logging.handlers.BufferingHandler(10)
    access.addHandler(added)
    try:
        with alone(json_log):
            await client.get("/healthz")
    finally:
        access.removeHandler(added)
    [record] = added.buffer
    assert record.getMessage() == "GET /healthz 200"
    assert [line["message"] for line in _lines(json_log)] == ["GET /healthz 200"]
