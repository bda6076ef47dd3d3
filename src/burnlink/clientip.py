"""Which address a request came from: the TCP peer, unless that peer is a trusted proxy.

Only when the peer is in ``BURNLINK_TRUSTED_PROXIES`` is one header read: the one the
operator's proxy sets, named by ``BURNLINK_PROXY_HEADER`` (``X-Forwarded-For``, ``Forwarded``
(RFC 7239) or ``X-Real-IP``). Every line of that header is joined in the order received, so a
client cannot hide the proxy's line behind a line of its own, and the list is walked from
the right: each hop appended by a trusted proxy is skipped, and the first untrusted hop is the
client. Anything a client wrote to the left of that, and every other header, is ignored, so
a spoofed header changes nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Literal

from burnlink.policy import IpNetwork, parse_ip

ProxyHeader = Literal["x-forwarded-for", "forwarded", "x-real-ip"]
"""The headers a trusted proxy may name the client in (``BURNLINK_PROXY_HEADER``)."""

# RFC 7230 token and quoted-string, for Forwarded's ``name=value`` pairs (RFC 7239 §4). A
# value may also hold ``:[]`` unquoted: proxies write ``for=192.0.2.1:80`` although the RFC
# asks for quotes, and the node is checked as an address afterwards anyway.
_NAME = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VALUE = r"[!#$%&'*+.^_`|~0-9A-Za-z:\[\]-]+"
_PAIR_RE = re.compile(rf'\s*({_NAME})=({_VALUE}|"(?:[^"\\]|\\.)*")\s*')
_ESCAPE_RE = re.compile(r"\\(.)")
# A node with its port (RFC 7239 §6; X-Forwarded-For writes them alike): digits, or "_" and an
# obfuscated name.
_PORT = r"(?::(?:[0-9]{1,5}|_[A-Za-z0-9._-]+))?"
_BRACKETED_RE = re.compile(rf"\[([^\]]*)\]{_PORT}")
_V4_PORT_RE = re.compile(rf"([^:]*){_PORT}")


class ClientAddress:
    """Resolves the client address of a request given the trusted proxy networks and the
    one header those proxies set."""

    def __init__(
        self, trusted: Sequence[IpNetwork], header: ProxyHeader = "x-forwarded-for"
    ) -> None:
        self.trusted = tuple(trusted)
        self.header: ProxyHeader = header

    def _trusted(self, ip: str | None) -> bool:
        address = parse_ip(ip)
        return address is not None and any(address in net for net in self.trusted)

    def resolve(self, peer: str | None, lines: Sequence[str]) -> str | None:
        """The client's address, given the peer and every line of ``self.header`` in the
        order received (read them only when ``self.trusted`` is not empty)."""
        if not self.trusted or not self._trusted(peer):
            return _canonical(peer)
        # No lines join to one empty hop, which ends the walk at the peer like any malformed hop.
        joined = ",".join(lines)
        if self.header == "forwarded":
            hops = [_forwarded_for(element) for element in joined.split(",")]
        else:
            hops = [_strip_port(hop.strip()) for hop in joined.split(",")]
        client = peer
        for hop in reversed(hops):
            if hop is None or "%" in hop or parse_ip(hop) is None:
                break  # obfuscated, scoped or malformed: trust nothing further left
            client = hop
            if not self._trusted(hop):
                break
        return _canonical(client)


def _forwarded_for(element: str) -> str | None:
    """The node of one ``Forwarded`` element's ``for`` parameter, port stripped; ``None``
    when the element is malformed, repeats a parameter or names no ``for``.

    Elements are split on every comma, even one inside a quoted string: a node never holds a
    comma, and a quoted comma can only come from a client, to the left of the trusted hops,
    where it turns into malformed elements that end the walk.
    """
    seen: dict[str, str] = {}
    position = 0
    while True:
        match = _PAIR_RE.match(element, position)
        if match is None:
            return None
        name, value = match.group(1).lower(), match.group(2)
        if name in seen:
            return None
        if value.startswith('"'):
            value = _ESCAPE_RE.sub(r"\1", value[1:-1])
        seen[name] = value
        position = match.end()
        if position == len(element):
            break
        if element[position] != ";":
            return None
        position += 1
    node = seen.get("for")
    return None if node is None else _strip_port(node)


def _strip_port(node: str) -> str | None:
    """``[2001:db8::1]:443`` → ``2001:db8::1``; ``192.0.2.1:80`` → ``192.0.2.1``; ``None``
    for a bracket not closed or followed by anything but a port."""
    if node.startswith("["):
        match = _BRACKETED_RE.fullmatch(node)
        return match.group(1) if match else None
    # One colon and a port: an IPv4 address or a name; anything else is left to be parsed.
    match = _V4_PORT_RE.fullmatch(node)
    return match.group(1) if match else node


@functools.lru_cache(maxsize=4096)
def _canonical(ip: str | None) -> str | None:
    # Cached (bounded): every request resolves its peer, and parsing and printing an address
    # was ~1 % of a reveal. Only valid addresses or the socket's peer reach it, never header
    # text, and a miss costs what every call cost before.
    address = parse_ip(ip)
    return str(address) if address is not None else ip
