"""The SSRF guard: URL shape, every resolved address, the allow-list, and pinning."""

from __future__ import annotations

import ipaddress

import pytest

from burnlink.errors import ConfigError
from burnlink.netguard import (
    AllowList,
    Resolver,
    ThreadedResolver,
    UnresolvableHost,
    UnsafeUrl,
    forbidden_reason,
    pin,
    system_resolver,
)

pytestmark = pytest.mark.anyio


def resolver_for(*addresses: str) -> Resolver:
    """A resolver that answers every name with ``addresses`` (a stand-in for DNS)."""

    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.254", "shared (CGNAT)"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a bind
        ("::", "unspecified"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::a00:1", "private"),
        ("2002:a00:1::", "private"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),  # Teredo of 10.0.0.1
        ("fe80::1%2", "link-local"),
    ],
)
def test_forbidden_reason_names_internal_addresses(address: str, reason: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_forbidden_reason_passes_public_addresses(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://[fd00:ec2::254]/",
        "http://100.64.0.1/",
        "http://0.0.0.0:80/",
    ],
)
async def test_pin_refuses_internal_address_literals(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="resolves to a"):
        await pin(url, AllowList())


async def test_pin_refuses_localhost_through_real_resolution() -> None:
    with pytest.raises(UnsafeUrl, match="loopback"):
        await pin("http://localhost:9/hook", AllowList())


async def test_pin_refuses_numeric_tricks_that_resolve_to_loopback() -> None:
    with pytest.raises(UnsafeUrl, match="loopback"):
        await pin("http://2130706433/hook", AllowList())


async def test_system_resolver_reports_names_that_cannot_resolve() -> None:
    with pytest.raises(UnresolvableHost):
        await system_resolver("a" * 64 + ".example", 443)


async def test_threaded_resolver_resolves_and_reports_as_the_system_one() -> None:
    resolver = ThreadedResolver(2)
    try:
        assert await resolver("localhost", 80) == await system_resolver("localhost", 80)
        with pytest.raises(UnresolvableHost):
            await resolver("a" * 64 + ".example", 443)
    finally:
        resolver.close()


async def test_pin_refuses_when_any_resolved_address_is_internal() -> None:
    resolver = resolver_for("93.184.215.14", "10.0.0.1")

    with pytest.raises(UnsafeUrl, match="private"):
        await pin("https://hooks.example.com/x", AllowList(), resolver=resolver)


async def test_pin_returns_the_first_checked_address() -> None:
    resolver = resolver_for("93.184.215.14", "93.184.215.15")

    target = await pin("https://Hooks.Example.com/x?y=1", AllowList(), resolver=resolver)

    assert target.address == "93.184.215.14"
    assert target.host == "hooks.example.com"
    assert (target.scheme, target.port) == ("https", 443)
    assert target.host_header == "hooks.example.com"
    assert target.sni_hostname == "hooks.example.com"
    assert str(target.connect_url) == "https://93.184.215.14/x?y=1"
    assert "y=1" not in repr(target)


async def test_pin_keeps_a_non_default_port_in_the_host_header() -> None:
    target = await pin(
        "http://hooks.example.com:8080/x", AllowList(), resolver=resolver_for("93.184.215.14")
    )

    assert target.host_header == "hooks.example.com:8080"
    assert target.sni_hostname is None
    assert str(target.connect_url) == "http://93.184.215.14:8080/x"


async def test_pin_of_an_ipv6_literal_brackets_the_host_header() -> None:
    target = await pin("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/", AllowList())

    assert target.host_header == "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443"
    assert target.sni_hostname is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://user:pass@example.com/", "user name or password"),
        ("https://token@example.com/", "user name or password"),
        ("http:///path", "host"),
        ("https://exa mple.com/", "single-line"),
        ("https://example.com/\nX: y", "single-line"),
        ("https://example.com:99999/", "valid URL"),
        ("https://example.com:0/", "valid URL"),
        ("https://" + "a" * 2050 + ".com/", "2048"),
    ],
)
async def test_pin_refuses_malformed_urls(url: str, message: str) -> None:
    with pytest.raises(UnsafeUrl, match=message) as caught:
        await pin(url, AllowList(), resolver=resolver_for("93.184.215.14"))
    assert caught.value.field == "webhook_url"


async def test_pin_reports_names_that_do_not_resolve() -> None:
    with pytest.raises(UnresolvableHost):
        await pin("https://hooks.example.com/", AllowList(), resolver=resolver_for())
    with pytest.raises(UnresolvableHost):
        await pin("https://hooks.example.com/", AllowList(), resolver=resolver_for("nonsense"))


async def test_allow_list_host_permits_internal_addresses_of_that_name() -> None:
    allow = AllowList.parse("hooks.internal, other.internal")

    target = await pin("http://hooks.internal/x", allow, resolver=resolver_for("10.0.0.7"))

    assert target.address == "10.0.0.7"
    with pytest.raises(UnsafeUrl):
        await pin("http://evil.example/x", allow, resolver=resolver_for("10.0.0.7"))


async def test_allow_list_network_permits_addresses_inside_it() -> None:
    allow = AllowList.parse("127.0.0.0/8 ::1")

    assert (await pin("http://127.0.0.1:9/", allow)).address == "127.0.0.1"
    assert (await pin("http://[::1]:9/", allow)).address == "::1"
    with pytest.raises(UnsafeUrl):
        await pin("http://10.0.0.1/", allow)


async def test_allow_list_lets_metadata_through_only_when_listed_exactly() -> None:
    url = "http://169.254.169.254/"

    for wide in ("169.254.0.0/16", "0.0.0.0/0"):
        with pytest.raises(UnsafeUrl, match="metadata"):
            await pin(url, AllowList.parse(wide))
    with pytest.raises(UnsafeUrl, match="metadata"):
        await pin(
            "http://meta.internal/",
            AllowList.parse("meta.internal"),
            resolver=resolver_for("169.254.169.254"),
        )
    assert (await pin(url, AllowList.parse("169.254.169.254"))).address == "169.254.169.254"


def test_allow_list_parse_accepts_lists_and_normalises_hosts() -> None:
    allow = AllowList.parse(["Hooks.Internal.", "[fd00::/8]", "10.1.2.3"])

    assert allow.hosts == frozenset({"hooks.internal"})
    assert [str(n) for n in allow.networks] == ["fd00::/8", "10.1.2.3/32"]
    assert AllowList.parse(None) == AllowList()
    assert AllowList.parse(" , ") == AllowList()


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "a/b", "bad..host"])
def test_allow_list_parse_refuses_garbage(entry: str) -> None:
    with pytest.raises(ConfigError, match="BURNLINK_WEBHOOK_ALLOW"):
        AllowList.parse(entry)
