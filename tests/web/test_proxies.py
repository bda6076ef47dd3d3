"""Who the client is behind a real reverse proxy: Debian's nginx in front of ``burnlink
serve``, and a client that sends every spoofing variant through it (docs/access.md).

The client connects to nginx from 127.0.0.2 (or ::1); nginx connects to burnlink from
127.0.0.1, the one trusted proxy. Whatever the client writes, the address burnlink records
(the receipt's ``created`` event) must be the one nginx saw, and an IP rule for the address
the client claims must not be passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.proxies import burnlink_serve, nginx_proxy, require_nginx

CLAIMED = ["203.0.113.0/24", "2001:db8::/32"]

SPOOFS = [
    pytest.param([("X-Forwarded-For", "203.0.113.5")], id="x-forwarded-for"),
    pytest.param([("Forwarded", "for=203.0.113.5")], id="forwarded"),
    pytest.param(
        [("X-Forwarded-For", "203.0.113.5"), ("X-Forwarded-For", "203.0.113.6")],
        id="two-x-forwarded-for-lines",
    ),
    pytest.param(
        [("Forwarded", "for=203.0.113.5"), ("Forwarded", "for=203.0.113.6")],
        id="two-forwarded-lines",
    ),
    pytest.param([("X-Real-IP", "203.0.113.5")], id="x-real-ip"),
    pytest.param(
        [
            ("X-Forwarded-For", "203.0.113.5"),
            ("Forwarded", "for=203.0.113.5"),
            ("X-Real-IP", "203.0.113.5"),
        ],
        id="all-three",
    ),
    pytest.param([("Forwarded", "for=_hidden"), ("X-Forwarded-For", "_hidden")], id="obfuscated"),
    pytest.param(
        [
            ("X-Forwarded-For", "2001:db8::5"),
            ("Forwarded", 'for="[2001:db8::5]:443"'),
            ("X-Real-IP", "2001:db8::5"),
        ],
        id="ipv6",
    ),
    pytest.param(
        [
            ("X-Forwarded-For", "127.0.0.1"),
            ("Forwarded", "for=127.0.0.1"),
            ("X-Real-IP", "127.0.0.1"),
        ],
        id="claims-to-be-the-proxy",
    ),
    pytest.param(
        [
            ("X-Forwarded-For", 'garbage, , ;"'),
            ("Forwarded", 'for="203.0.113.5'),
            ("X-Real-IP", "x"),
        ],
        id="garbage",
    ),
    pytest.param([("Forwarded", 'for=203.0.113.5;by="a, for=203.0.113.6"')], id="quoted-comma"),
    pytest.param([("X-Forwarded-For", "203.0.113.5:80, 203.0.113.6")], id="ports"),
]


@pytest.fixture(scope="module", params=["x-forwarded-for", "forwarded", "x-real-ip"])
def proxy_port(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """nginx naming the client in one header, in front of burnlink reading that header."""
    require_nginx()
    header: str = request.param
    folder = tmp_path_factory.mktemp(f"proxy-{header}")
    env = {"BURNLINK_TRUSTED_PROXIES": "127.0.0.1", "BURNLINK_PROXY_HEADER": header}
    with burnlink_serve(folder, env) as upstream, nginx_proxy(folder, upstream, header) as port:
        yield port


@pytest.fixture(params=["ipv4", "ipv6"])
def client(request: pytest.FixtureRequest, proxy_port: int) -> Iterator[tuple[httpx.Client, str]]:
    """A client of nginx, and the address nginx sees it connect from."""
    if request.param == "ipv4":
        transport, base, address = (
            httpx.HTTPTransport(local_address="127.0.0.2"),
            "127.0.0.1",
            "127.0.0.2",
        )
    else:
        transport, base, address = httpx.HTTPTransport(), "[::1]", "::1"
    with httpx.Client(
        transport=transport, base_url=f"http://{base}:{proxy_port}", timeout=10
    ) as http:
        yield http, address


@pytest.mark.parametrize("spoof", SPOOFS)
def test_behind_nginx_the_client_cannot_choose_its_address(
    client: tuple[httpx.Client, str], spoof: list[tuple[str, str]]
) -> None:
    http, address = client
    created = http.post(
        "/api/v1/secrets", json={"secret": "s3cret", "allowed_ips": CLAIMED}, headers=spoof
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    refused = http.post(
        f"/api/v1/secrets/{body['id']}/reveal",
        json={"key": body["url"].split("#")[1]},
        headers=spoof,
    )
    receipt = http.get(
        f"/api/v1/secrets/{body['id']}/receipt",
        headers={"authorization": "Bearer " + body["manage_url"].split("#")[1]},
    )

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ip_denied"
    first = receipt.json()["events"][0]
    assert (first["type"], first["ip"]) == ("created", address)


def test_behind_nginx_forged_addresses_share_the_real_clients_rate_limit(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A client that writes a new address into every request still spends one budget."""
    require_nginx()
    folder = tmp_path_factory.mktemp("proxy-rate-limit")
    env = {"BURNLINK_TRUSTED_PROXIES": "127.0.0.1", "BURNLINK_RATE_LIMIT_CREATE": "3/hour"}
    with (
        burnlink_serve(folder, env) as upstream,
        nginx_proxy(folder, upstream, "x-forwarded-for") as port,
        httpx.Client(
            transport=httpx.HTTPTransport(local_address="127.0.0.2"),
            base_url=f"http://127.0.0.1:{port}",
            timeout=10,
        ) as http,
    ):
        statuses = [
            http.post(
                "/api/v1/secrets",
                json={"secret": "s3cret"},
                headers=[
                    ("X-Forwarded-For", f"203.0.113.{n}"),
                    ("Forwarded", f"for=198.51.100.{n}"),
                    ("X-Real-IP", f"192.0.2.{n}"),
                ],
            ).status_code
            for n in range(5)
        ]

    assert statuses == [201, 201, 201, 429, 429]
