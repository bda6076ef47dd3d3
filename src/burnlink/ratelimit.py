"""Rate limits per client, counted in the store so every server process shares them.

A limit reads like ``10/minute`` (units: second, minute, hour, day; ``off`` disables it).
Clients are keyed by IPv4 address or IPv6 /64, since one IPv6 host usually owns a /64.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime

from burnlink.access import parse_ip
from burnlink.errors import RateLimited
from burnlink.store import SecretStore

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` events per ``window`` seconds."""

    count: int
    window: int

    @classmethod
    def parse(cls, text: str) -> Limit | None:
        """``"10/minute"`` → ``Limit(10, 60)``; ``"off"`` → ``None``; else ``ValueError``."""
        if text.strip().lower() == "off":
            return None
        match = _LIMIT_RE.fullmatch(text)
        if match is None or int(match.group(1)) < 1:
            raise ValueError("must look like 10/minute (second, minute, hour, day) or be off")
        return cls(int(match.group(1)), _UNITS[match.group(2).lower()])


@functools.lru_cache(maxsize=4096)
def client_key(ip: str | None) -> str:
    """The rate-limit identity of an address: IPv4 as is, IPv6 by its /64."""
    address = parse_ip(ip)
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class RateLimiter:
    """Counts events per client in the store and refuses those over a limit.

    Failed reveals (wrong key, wrong passphrase or code, refused address) are counted apart;
    a client past ``failures`` is refused every reveal until its window ends.
    """

    def __init__(self, store: SecretStore, failures: Limit | None) -> None:
        self.store = store
        self.failures = failures

    async def check(
        self, action: str, limit: Limit | None, ip: str | None, *, now: datetime
    ) -> None:
        """Count one ``action`` by ``ip``; raise ``RateLimited`` once past ``limit``."""
        if limit is None:
            return
        count = await self.store.hit(f"{action}:{client_key(ip)}", window=limit.window, now=now)
        if count > limit.count:
            raise RateLimited(retry_after=_seconds_to_window_end(limit.window, now))

    async def check_failures(self, ip: str | None, *, now: datetime) -> None:
        """Raise ``RateLimited`` if ``ip`` already failed too often; counts nothing."""
        if self.failures is None:
            return
        bucket = f"failed:{client_key(ip)}"
        count = await self.store.hit(bucket, window=self.failures.window, now=now, cost=0)
        if count >= self.failures.count:
            raise RateLimited(retry_after=_seconds_to_window_end(self.failures.window, now))

    async def record_failure(self, ip: str | None, *, now: datetime) -> None:
        """Count one failed reveal by ``ip``."""
        if self.failures is not None:
            bucket = f"failed:{client_key(ip)}"
            await self.store.hit(bucket, window=self.failures.window, now=now)


def _seconds_to_window_end(window: int, now: datetime) -> int:
    elapsed = now.timestamp() % window
    return max(1, int(window - elapsed + 0.999))
