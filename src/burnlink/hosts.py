"""Which ``Host`` header values the server answers to (``BURNLINK_ALLOWED_HOSTS``), and
which listening addresses are loopback.

Without ``BURNLINK_BASE_URL`` the ``Host`` of each request decides the links the server hands
out and the issuer of its signed statements, so on anything but a loopback address the
operator must either fix the base or list the hosts that may appear there.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

# RFC 9110 §7.2 / RFC 3986 §3.2.2: a name, an IPv4 address or a bracketed IPv6 literal, then
# an optional port; lower case (host names are case-insensitive). Longest name: 253.
_HOST_RE = re.compile(
    r"^(?:\[[0-9a-f:.]{2,45}\]|[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?)(?::[0-9]{1,5})?$"
)


def normalise_host(value: str) -> str | None:
    """``value`` as a ``Host`` header value in lower case, or ``None`` when it is not one."""
    host = value.strip().lower()
    return host if _HOST_RE.fullmatch(host) else None


def is_loopback(host: str) -> bool:
    """Whether the listening address ``host`` (an IP address or ``localhost``) is loopback
    only; a wildcard such as ``0.0.0.0`` and any other name are not."""
    name = host.strip().lower().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class AllowedHosts:
    """The ``Host`` values a server answers to; empty means any."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.hosts = frozenset(entries)

    def allows(self, lines: list[str]) -> bool:
        """Whether a request with these ``Host`` lines may be answered: exactly one line,
        equal (ignoring case) to a listed entry, port included."""
        if not self.hosts:
            return True
        if len(lines) != 1:
            return False
        host = normalise_host(lines[0])
        return host is not None and host in self.hosts
