"""Client addresses behind trusted proxies, and spoofed headers from anyone else."""

from __future__ import annotations

import ipaddress

import pytest

from burnlink.clientip import ClientAddress, ProxyHeader

NETWORKS = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
XFF = ClientAddress(NETWORKS, "x-forwarded-for")
FORWARDED = ClientAddress(NETWORKS, "forwarded")
REAL_IP = ClientAddress(NETWORKS, "x-real-ip")


@pytest.mark.parametrize(
    ("peer", "lines", "client"),
    [
        pytest.param("198.51.100.1", ["203.0.113.9"], "198.51.100.1", id="untrusted-peer"),
        pytest.param("10.0.0.1", [], "10.0.0.1", id="trusted-no-header"),
        pytest.param("10.0.0.1", ["203.0.113.9"], "203.0.113.9", id="one-hop"),
        pytest.param("10.0.0.1", ["1.1.1.1, 203.0.113.9"], "203.0.113.9", id="spoofed-left"),
        pytest.param("10.0.0.1", ["203.0.113.9, 10.0.0.2"], "203.0.113.9", id="two-proxies"),
        pytest.param("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3", id="all-trusted"),
        pytest.param("10.0.0.1", ["garbage, 203.0.113.9"], "203.0.113.9", id="junk-left"),
        pytest.param("10.0.0.1", ["203.0.113.9, garbage"], "10.0.0.1", id="junk-right"),
        pytest.param("10.0.0.1", ["203.0.113.9, "], "10.0.0.1", id="empty-right"),
        pytest.param("10.0.0.1", ["1.1.1.1", "203.0.113.9"], "203.0.113.9", id="two-lines"),
        pytest.param(
            "10.0.0.1", ["1.1.1.1", "203.0.113.9, 10.0.0.2"], "203.0.113.9", id="two-lines-chain"
        ),
        pytest.param("10.0.0.1", ["fe80::1%eth0"], "10.0.0.1", id="scoped-v6"),
        pytest.param("10.0.0.1", ["203.0.113.9:4711"], "203.0.113.9", id="v4-port"),
        pytest.param("10.0.0.1", ["203.0.113.9:47:11"], "10.0.0.1", id="v4-two-colons"),
        pytest.param("10.0.0.1", ["203.0.113.9:_p1"], "203.0.113.9", id="v4-obfuscated-port"),
        pytest.param("10.0.0.1", ["203.0.113.9:http"], "10.0.0.1", id="v4-port-not-a-number"),
        pytest.param("10.0.0.1", ["203.0.113.9:123456"], "10.0.0.1", id="v4-port-too-long"),
        pytest.param("10.0.0.1", ["[2001:db8::9]:_p"], "2001:db8::9", id="v6-obfuscated-port"),
        pytest.param("10.0.0.1", ["[2001:db8::9]:1]"], "10.0.0.1", id="v6-second-bracket"),
        pytest.param("10.0.0.1", ["[2001:db8::9]"], "2001:db8::9", id="v6-brackets"),
        pytest.param("10.0.0.1", ["[2001:db8::9"], "10.0.0.1", id="v6-unclosed-bracket"),
        pytest.param("10.0.0.1", ["[2001:db8::9]4711"], "10.0.0.1", id="v6-junk-after"),
        pytest.param("10.0.0.1", ["2001:DB8::9"], "2001:db8::9", id="v6-canonical"),
        pytest.param("10.0.0.1", ["[2001:db8::9]:4711"], "2001:db8::9", id="v6-port"),
        pytest.param("fd00::1", ["2001:db8::9"], "2001:db8::9", id="v6-proxy"),
        pytest.param("::ffff:10.0.0.1", ["203.0.113.9"], "203.0.113.9", id="mapped-proxy"),
    ],
)
def test_client_address_from_x_forwarded_for(peer: str, lines: list[str], client: str) -> None:
    assert XFF.resolve(peer, lines) == client


@pytest.mark.parametrize(
    ("lines", "client"),
    [
        pytest.param(["for=203.0.113.9"], "203.0.113.9", id="one-hop"),
        pytest.param(['for="[2001:db8::7]:443";proto=https'], "2001:db8::7", id="v6"),
        pytest.param(["for=1.1.1.1, for=203.0.113.9:8080"], "203.0.113.9", id="chain"),
        pytest.param(["for=1.1.1.1", "for=203.0.113.9"], "203.0.113.9", id="two-lines"),
        pytest.param(["For=203.0.113.9;BY=10.0.0.1"], "203.0.113.9", id="case"),
        pytest.param(["for=_hidden"], "10.0.0.1", id="obfuscated"),
        pytest.param(["for=unknown, for=10.0.0.2"], "10.0.0.2", id="unknown-left-of-proxy"),
        pytest.param(["proto=https"], "10.0.0.1", id="no-for"),
        pytest.param(["for=203.0.113.9;for=10.0.0.2"], "10.0.0.1", id="repeated-param"),
        pytest.param(['for="203.0.113.9'], "10.0.0.1", id="open-quote"),
        pytest.param(['by="x;for=1.1.1.1";for=203.0.113.9'], "203.0.113.9", id="for-in-quotes"),
        pytest.param(['for="1.1.1.1, for=203.0.113.9'], "203.0.113.9", id="quote-swallows"),
        pytest.param(['for="[2001:db8::7]x"'], "10.0.0.1", id="junk-after-bracket"),
        pytest.param(["for=203.0.113.9 junk"], "10.0.0.1", id="junk-after-value"),
        pytest.param(["proto=https;for=203.0.113.9"], "203.0.113.9", id="for-second"),
        pytest.param(["proto=https; for=203.0.113.9"], "203.0.113.9", id="space-after-semicolon"),
        pytest.param(['for="203.0.113.\\9"'], "203.0.113.9", id="quoted-pair"),
        pytest.param(['for=""'], "10.0.0.1", id="empty-quotes"),
        pytest.param(["for=203.0.113.9;"], "10.0.0.1", id="trailing-semicolon"),
    ],
)
def test_client_address_from_forwarded(lines: list[str], client: str) -> None:
    assert FORWARDED.resolve("10.0.0.1", lines) == client


@pytest.mark.parametrize(
    ("resolver", "lines"),
    [
        pytest.param(XFF, ["for=203.0.113.9"], id="xff-ignores-forwarded-syntax"),
        pytest.param(FORWARDED, ["203.0.113.9"], id="forwarded-ignores-bare-address"),
    ],
)
def test_client_address_reads_only_its_header_syntax(
    resolver: ClientAddress, lines: list[str]
) -> None:
    assert resolver.resolve("10.0.0.1", lines) == "10.0.0.1"


def test_client_address_from_x_real_ip() -> None:
    assert REAL_IP.resolve("10.0.0.1", ["203.0.113.9"]) == "203.0.113.9"
    assert REAL_IP.resolve("10.0.0.1", ["1.1.1.1", "203.0.113.9"]) == "203.0.113.9"


@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded", "x-real-ip"])
def test_without_trusted_proxies_headers_are_ignored(header: ProxyHeader) -> None:
    resolver = ClientAddress([], header)
    assert resolver.resolve("10.0.0.1", ["for=1.2.3.4", "1.2.3.4"]) == "10.0.0.1"


@pytest.mark.parametrize(
    ("peer", "client"),
    [
        pytest.param(None, None, id="no-peer"),
        pytest.param("testclient", "testclient", id="not-an-address"),
        pytest.param("::ffff:198.51.100.1", "198.51.100.1", id="v4-mapped"),
        pytest.param("2001:DB8::1", "2001:db8::1", id="v6-upper-case"),
    ],
)
@pytest.mark.parametrize("resolver", [XFF, ClientAddress([])], ids=["trusted-set", "none-trusted"])
def test_client_address_of_an_untrusted_peer_is_the_peer_canonical(
    resolver: ClientAddress, peer: str | None, client: str | None
) -> None:
    assert resolver.resolve(peer, ["203.0.113.9"]) == client


def test_client_address_reads_x_forwarded_for_unless_told() -> None:
    resolver = ClientAddress(NETWORKS)

    assert resolver.header == "x-forwarded-for"
    assert resolver.resolve("10.0.0.1", ["1.1.1.1, 203.0.113.9"]) == "203.0.113.9"
