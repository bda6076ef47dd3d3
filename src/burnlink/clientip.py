"""Which address a request came from: the TCP peer, unless that peer is a trusted proxy.

Only when the peer is in ``BURNLINK_TRUSTED_PROXIES`` are ``Forwarded`` (RFC 7239) or
``X-Forwarded-For`` read, and then from the right: each hop appended by a trusted proxy is
skipped, and the first untrusted hop is the client. Anything a client wrote to the left of
that is ignored, so a spoofed header changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from burnlink.access import IpNetwork, parse_ip

_FOR_RE = re.compile(r'(?:^|[;,\s])for=("?)([^;,"]*)\1', re.IGNORECASE)


class ClientAddress:
    """Resolves the client address of a request given the trusted proxy networks."""

    def __init__(self, trusted: Sequence[IpNetwork]) -> None:
        self.trusted = tuple(trusted)

    def _trusted(self, ip: str) -> bool:
        address = parse_ip(ip)
        return address is not None and any(address in net for net in self.trusted)

    def resolve(
        self, peer: str | None, forwarded: str | None, x_forwarded_for: str | None
    ) -> str | None:
        """The client's address. ``forwarded`` wins over ``x_forwarded_for`` when both are set."""
        if peer is None or not self.trusted or not self._trusted(peer):
            return _canonical(peer)
        if forwarded:
            hops = [_strip_port(m.group(2)) for m in _FOR_RE.finditer(forwarded)]
        elif x_forwarded_for:
            hops = [hop.strip() for hop in x_forwarded_for.split(",")]
        else:
            return _canonical(peer)
        client = peer
        for hop in reversed(hops):
            if parse_ip(hop) is None:
                break  # an obfuscated or malformed hop: trust nothing further left
            client = hop
            if not self._trusted(hop):
                break
        return _canonical(client)


def _strip_port(node: str) -> str:
    """``[2001:db8::1]:443`` → ``2001:db8::1``; ``192.0.2.1:80`` → ``192.0.2.1``."""
    if node.startswith("["):
        return node[1:].split("]", 1)[0]
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


def _canonical(ip: str | None) -> str | None:
    address = parse_ip(ip)
    return str(address) if address is not None else ip
