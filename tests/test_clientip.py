"""Client addresses behind trusted proxies, and spoofed headers from anyone else."""

from __future__ import annotations

import ipaddress

import pytest

from burnlink.clientip import ClientAddress

PROXIES = ClientAddress([ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")])


@pytest.mark.parametrize(
    ("peer", "forwarded", "xff", "client"),
    [
        pytest.param("198.51.100.1", None, "203.0.113.9", "198.51.100.1", id="untrusted-peer"),
        pytest.param("198.51.100.1", "for=203.0.113.9", None, "198.51.100.1", id="untrusted-fwd"),
        pytest.param("10.0.0.1", None, None, "10.0.0.1", id="trusted-no-header"),
        pytest.param("10.0.0.1", None, "203.0.113.9", "203.0.113.9", id="one-hop"),
        pytest.param("10.0.0.1", None, "1.1.1.1, 203.0.113.9", "203.0.113.9", id="spoofed-left"),
        pytest.param("10.0.0.1", None, "203.0.113.9, 10.0.0.2", "203.0.113.9", id="two-proxies"),
        pytest.param("10.0.0.1", None, "10.0.0.3, 10.0.0.2", "10.0.0.3", id="all-trusted"),
        pytest.param("10.0.0.1", None, "garbage, 203.0.113.9", "203.0.113.9", id="junk-left"),
        pytest.param("10.0.0.1", None, "203.0.113.9, garbage", "10.0.0.1", id="junk-right"),
        pytest.param("10.0.0.1", "for=203.0.113.9", "1.2.3.4", "203.0.113.9", id="forwarded-wins"),
        pytest.param(
            "10.0.0.1", 'for="[2001:db8::7]:443";proto=https', None, "2001:db8::7", id="fwd-v6"
        ),
        pytest.param(
            "10.0.0.1", "for=1.1.1.1, for=203.0.113.9:8080", None, "203.0.113.9", id="fwd-chain"
        ),
        pytest.param("10.0.0.1", "for=_hidden", None, "10.0.0.1", id="fwd-obfuscated"),
        pytest.param("fd00::1", None, "2001:db8::9", "2001:db8::9", id="v6-proxy"),
        pytest.param("::ffff:10.0.0.1", None, "203.0.113.9", "203.0.113.9", id="mapped-proxy"),
    ],
)
def test_client_address_resolution(
    peer: str, forwarded: str | None, xff: str | None, client: str
) -> None:
    assert PROXIES.resolve(peer, forwarded, xff) == client


def test_without_trusted_proxies_headers_are_ignored() -> None:
    assert ClientAddress([]).resolve("10.0.0.1", "for=1.2.3.4", "1.2.3.4") == "10.0.0.1"
