"""Parsing rate limits and keying clients."""

from __future__ import annotations

import pytest

from burnlink.config import Limit
from burnlink.service.rate_limits import client_key


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("10/minute", Limit(10, 60)),
        ("1/second", Limit(1, 1)),
        (" 5 / hours ", Limit(5, 3600)),
        ("100/DAY", Limit(100, 86400)),
        ("30/10 minutes", Limit(30, 600)),
        ("30/10minutes", Limit(30, 600)),
        ("3/7 days", Limit(3, 7 * 86400)),
        ("off", None),
    ],
)
def test_limit_parse(text: str, limit: Limit | None) -> None:
    assert Limit.parse(text) == limit


@pytest.mark.parametrize("text", ["10", "0/minute", "ten/minute", "10/fortnight", "-1/hour", ""])
def test_limit_parse_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="10/minute"):
        Limit.parse(text)


@pytest.mark.parametrize("text", ["1/0 minutes", "1/8 days", "1/169 hours"])
def test_limit_parse_refuses_windows_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        Limit.parse(text)


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        (None, "unknown"),
    ],
)
def test_client_key_groups_an_ipv6_host_by_its_64(ip: str | None, key: str) -> None:
    assert client_key(ip) == key
