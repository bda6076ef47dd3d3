"""Outbound request guard: keep webhooks from reaching the server's own network (SSRF).

``pin(url, allow)`` checks a URL and resolves its host, then returns the one address to
connect to. The caller connects to that address (keeping ``Host`` and TLS SNI as the name),
so a second DNS answer cannot swap in another address between the check and the connection.

Refused
    Schemes other than ``http``/``https``; user info (``user:pass@``); a missing host. Then,
    if **any** resolved address is loopback, private (RFC 1918, IPv6 ULA ``fc00::/7``),
    link-local (``169.254/16``, ``fe80::/10``), multicast, reserved, unspecified, shared
    (CGNAT ``100.64/10``), otherwise not globally routable, or a cloud metadata address
    (``169.254.169.254``, ``fd00:ec2::254``, …). IPv6 forms that embed an IPv4 address
    (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64 ``64:ff9b::/96``) are judged by
    that IPv4 address too.

Allowed anyway (``BURNLINK_WEBHOOK_ALLOW``, parsed by ``AllowList.parse``)
    A host name on the list may resolve to internal addresses; an address inside a listed
    network is accepted. Metadata addresses are accepted only when listed one by one
    (``169.254.169.254/32``), never through a host name or a wider network.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

import httpx

from burnlink.errors import BurnlinkError, ConfigError, InvalidInput

__all__ = [
    "METADATA_ADDRESSES",
    "AllowList",
    "PinnedTarget",
    "Resolver",
    "ThreadedResolver",
    "UnresolvableHost",
    "UnsafeUrl",
    "canonical_host",
    "forbidden_reason",
    "pin",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH: Final = 2048

METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, …
        "169.254.169.253",  # AWS DNS
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IPv6
        "fd00:ec2::23",  # AWS IPv6 time/DNS
    )
)

_SHARED: Final = ipaddress.ip_network("100.64.0.0/10")
_NAT64: Final = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class UnsafeUrl(InvalidInput):
    """Raised when a webhook URL is malformed or points where burnlink must not connect."""

    def __init__(self, reason: str) -> None:
        super().__init__("webhook_url", reason)


class UnresolvableHost(BurnlinkError):
    """Raised when a webhook host has no address right now (may work on a later attempt)."""


Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``: how ``pin`` resolves names (``system_resolver``)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for a TCP connection to ``host``:``port``, looked
    up on the event loop's default executor (shared with the rest of the process)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve the webhook host: {type(exc).__name__}") from None
    return [str(info[4][0]) for info in infos]


class ThreadedResolver:
    """A ``Resolver``: ``getaddrinfo`` on threads of its own, not the loop's default executor.

    A lookup cannot be cancelled: a name whose DNS server never answers holds its thread
    until the C library gives up (tens of seconds). Names are chosen by senders, so their
    lookups get a pool of their own, and the operator's alerts and everything else on the
    default executor (mail, for one) never wait for a thread behind them.
    """

    def __init__(self, threads: int, *, name: str = "burnlink-dns") -> None:
        """Up to ``threads`` lookups at once (threads start when needed)."""
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def __call__(self, host: str, port: int) -> list[str]:
        """As ``system_resolver``; ``UnresolvableHost`` when the name does not resolve."""
        lookup = functools.partial(
            socket.getaddrinfo, host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        try:
            infos = await asyncio.get_running_loop().run_in_executor(self._executor, lookup)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnresolvableHost(
                f"cannot resolve the webhook host: {type(exc).__name__}"
            ) from None
        return [str(info[4][0]) for info in infos]

    def close(self) -> None:
        """Take no more lookups; those running end on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why burnlink must not connect to ``address``, or ``None`` if it is a public address."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "link-local"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            if inner is not None:
                return inner
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _SHARED, "shared (CGNAT)"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "not globally routable"),
    )
    for matched, reason in checks:
        if matched:
            return reason
    return None


def _parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0] if "%" in text else text)


@dataclass(frozen=True, slots=True)
class AllowList:
    """Host names and networks that webhooks may reach although they are internal."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> AllowList:
        """From ``BURNLINK_WEBHOOK_ALLOW``: comma- or space-separated hosts, IPs and CIDRs.

        Raises ``ConfigError`` for an entry that is neither a host name nor an address.
        """
        items = (text or "").replace(",", " ").split() if isinstance(text, str | None) else text
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in items:
            item = raw.strip().strip("[]").lower().rstrip(".")
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
                continue
            except ValueError:
                pass
            if "/" in item or not all(part and len(part) <= 63 for part in item.split(".")):
                raise ConfigError(f"BURNLINK_WEBHOOK_ALLOW: {raw!r} is not a host or network")
            hosts.add(item)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` (a name) is listed."""
        return host.lower().rstrip(".") in self.hosts

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether a connection to ``address`` (resolved from ``host``) is acceptable."""
        reason = forbidden_reason(address)
        if reason is None:
            return True
        if reason == "cloud metadata":
            return any(
                net.prefixlen == net.max_prefixlen and address in net for net in self.networks
            )
        return self.allows_host(host) or any(address in net for net in self.networks)


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    """Where to send a request: the URL as given, and the address checked for it."""

    url: str = field(repr=False)
    """The full URL (may hold a token in its path: never log it)."""
    scheme: str
    host: str
    """The host name (ASCII, IDNA-encoded) or address literal from the URL."""
    port: int
    address: str
    """The checked address to connect to."""

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the URL's host, with the port when not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def connect_url(self) -> httpx.URL:
        """The URL with the host replaced by the pinned address."""
        return httpx.URL(self.url).copy_with(host=self.address)

    @property
    def sni_hostname(self) -> str | None:
        """The name for TLS SNI and certificate checks, when the URL names a host."""
        if self.scheme != "https":
            return None
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return self.host
        return None


_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


def canonical_host(host: str) -> str:
    """One spelling of a URL's host (as ``check_url`` returns it: lower case, IDNA-encoded),
    so that the spellings of one destination share one budget.

    A trailing dot goes (``example.com.`` is ``example.com``); an IP literal takes its
    compressed form (``0:0::1`` is ``::1``), an IPv4-mapped IPv6 address its IPv4 form, and
    the numeric forms a resolver reads as IPv4 (``127.1``, ``0x7f.0.0.1``, ``2130706433``)
    the dotted quad.
    """
    name = host.rstrip(".")
    try:
        address = _parse_address(name)
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address is not None:
        return str(address)
    if name and _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        # A name whose last label is a number is no DNS name: resolvers take it as IPv4.
        try:
            return socket.inet_ntoa(socket.inet_aton(name))
        except OSError:
            pass
    return name or host


def check_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a webhook URL, checked without DNS; ``UnsafeUrl`` if bad."""
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or not c.isprintable() for c in url):
        raise UnsafeUrl("must be a single-line URL of at most 2048 characters")
    try:
        parsed = httpx.URL(url)
        raw_host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        raise UnsafeUrl("is not a valid URL") from None
    if parsed.scheme not in {"http", "https"}:
        raise UnsafeUrl("must use http or https")
    if parsed.userinfo or "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        raise UnsafeUrl("must not contain a user name or password")
    host = raw_host.strip("[]").lower()
    if not host:
        raise UnsafeUrl("must name a host")
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise UnsafeUrl("is not a valid URL: port out of range")
    return parsed.scheme, host, port


async def pin(url: str, allow: AllowList, *, resolver: Resolver = system_resolver) -> PinnedTarget:
    """Check ``url``, resolve its host and return the address to connect to.

    Raises ``UnsafeUrl`` when the URL or any address it resolves to is refused (not worth
    retrying), and ``UnresolvableHost`` when the name does not resolve (worth retrying).
    """
    scheme, host, port = check_url(url)
    try:
        literal: IPAddress | None = _parse_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        answers = await resolver(host, port)
        try:
            addresses = [_parse_address(a) for a in answers]
        except ValueError:
            raise UnresolvableHost(
                "the webhook host resolved to something not an address"
            ) from None
    if not addresses:
        raise UnresolvableHost("the webhook host has no address")
    for address in addresses:
        if not allow.allows(host, address):
            raise UnsafeUrl(f"resolves to a {forbidden_reason(address)} address")
    return PinnedTarget(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]))
