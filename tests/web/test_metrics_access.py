"""Who may read ``GET /metrics`` (web/ops.py), against a real server over real sockets: a
bearer of ``BURNLINK_METRICS_TOKEN``; with none set, only a peer on loopback that connects
directly (no proxy header, not a trusted proxy)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import running_server

TOKEN = "scrape-token-0123456789abcdef"


def outside_address() -> str:
    """An address of this host that is not loopback (a scraper on another machine would
    connect from one like it); the test is skipped without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only a route is chosen
            address: str = probe.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    if address.startswith("127."):
        pytest.skip("needs an address that is not loopback")
    return address


@pytest.fixture
def outside() -> str:
    return outside_address()


@pytest.fixture
def open_server(tmp_path: Path, outside: str) -> Iterator[str]:
    """A server on every address, without a metrics token."""
    env = {"BURNLINK_BASE_URL": "http://burnlink.test", "BURNLINK_HOST": "0.0.0.0"}  # noqa: S104
    with running_server("memory://", tmp_path / "server.log", env=env, host="0.0.0.0") as run:  # noqa: S104
        yield run[0]


@pytest.fixture
def token_server(tmp_path: Path, outside: str) -> Iterator[str]:
    env = {
        "BURNLINK_BASE_URL": "http://burnlink.test",
        "BURNLINK_HOST": "0.0.0.0",  # noqa: S104 - a test
        "BURNLINK_METRICS_TOKEN": TOKEN,
        "BURNLINK_RATE_LIMIT_ADMIN": "3/hour",
    }
    with running_server("memory://", tmp_path / "server.log", env=env, host="0.0.0.0") as run:  # noqa: S104
        yield run[0]


def via(base: str, address: str) -> str:
    return base.replace("127.0.0.1", address)


def is_refused(response: httpx.Response) -> bool:
    return (
        response.status_code == 401
        and response.json()["error"]["code"] == "unauthorized"
        and response.headers["www-authenticate"] == 'Bearer realm="burnlink metrics"'
        and "burnlink_webhook" not in response.text
    )


def test_metrics_without_a_token_answer_only_a_direct_loopback_peer(
    open_server: str, outside: str
) -> None:
    base = open_server
    local = httpx.get(f"{base}/metrics", timeout=5)
    from_outside = httpx.get(f"{via(base, outside)}/metrics", timeout=5)
    forwarded = [
        httpx.get(f"{base}/metrics", headers={name: "203.0.113.9"}, timeout=5)
        for name in ("x-forwarded-for", "x-real-ip", "forwarded", "via", "x-forwarded-host")
    ]

    assert local.status_code == 200
    assert "burnlink_webhook_failures_total" in local.text
    assert is_refused(from_outside)
    assert all(is_refused(response) for response in forwarded)
    assert "BURNLINK_METRICS_TOKEN" in from_outside.json()["error"]["message"]


def test_metrics_with_a_token_need_it_from_everyone_and_limit_wrong_ones(
    token_server: str, outside: str
) -> None:
    base = via(token_server, outside)
    right = {"authorization": f"Bearer {TOKEN}"}
    scraped = httpx.get(f"{base}/metrics", headers=right, timeout=5)
    loopback_without = httpx.get(f"{token_server}/metrics", timeout=5)
    wrong = [
        httpx.get(f"{base}/metrics", headers={"authorization": f"Bearer {token}"}, timeout=5)
        for token in (TOKEN[:-1], TOKEN + "x", "a" * 64)
    ]
    limited = httpx.get(f"{base}/metrics", headers=right, timeout=5)

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "burnlink_secrets_created_total" in scraped.text
    assert is_refused(loopback_without)
    assert all(is_refused(response) for response in wrong)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
