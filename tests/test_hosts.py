"""Host header values and loopback listening addresses (``burnlink.hosts``)."""

from __future__ import annotations

import pytest

from burnlink.hosts import AllowedHosts, is_loopback, normalise_host


@pytest.mark.parametrize(
    ("value", "host"),
    [
        pytest.param("Secrets.Example.com", "secrets.example.com", id="case"),
        pytest.param("secrets.example.com:8443", "secrets.example.com:8443", id="port"),
        pytest.param("[2001:DB8::1]:443", "[2001:db8::1]:443", id="v6"),
        pytest.param("192.0.2.1", "192.0.2.1", id="v4"),
        pytest.param("a.example/x", None, id="path"),
        pytest.param("user@a.example", None, id="userinfo"),
        pytest.param("a.example:", None, id="empty-port"),
        pytest.param("2001:db8::1", None, id="v6-unbracketed"),
        pytest.param("-a.example", None, id="leading-dash"),
        pytest.param("", None, id="empty"),
    ],
)
def test_normalise_host(value: str, host: str | None) -> None:
    assert normalise_host(value) == host


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        pytest.param("127.0.0.1", True, id="v4"),
        pytest.param("127.8.9.10", True, id="v4-net"),
        pytest.param("::1", True, id="v6"),
        pytest.param("[::1]", True, id="v6-bracketed"),
        pytest.param("LocalHost", True, id="localhost"),
        pytest.param("0.0.0.0", False, id="any-v4"),  # noqa: S104 - the address under test
        pytest.param("::", False, id="any-v6"),
        pytest.param("192.0.2.1", False, id="lan"),
        pytest.param("burnlink.internal", False, id="name"),
        pytest.param("localhost.evil.example", False, id="lookalike"),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_allowed_hosts_empty_allows_any_single_or_missing_host() -> None:
    assert AllowedHosts(()).allows([]) is True
    assert AllowedHosts(()).allows(["anything"]) is True
