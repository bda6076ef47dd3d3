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
from burnlink.store import Hit, SecretStore

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` events per ``window`` seconds."""

    count: int
    window: int

    @staticmethod
    def parse(text: str) -> Limit | None:
        """``"10/minute"`` → ``Limit(10, 60)``; ``"off"`` → ``None``; else ``ValueError``."""
        return _parse_limit(text)


@functools.lru_cache(maxsize=64)
def _parse_limit(text: str) -> Limit | None:
    # Cached: the settings' limits are read on every request.
    if text.strip().lower() == "off":
        return None
    match = _LIMIT_RE.fullmatch(text)
    if match is None or int(match.group(1)) < 1:
        raise ValueError("must look like 10/minute (second, minute, hour, day) or be off")
    return Limit(int(match.group(1)), _UNITS[match.group(2).lower()])


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
        self,
        action: str,
        limit: Limit | None,
        ip: str | None,
        *,
        now: datetime,
        failures: bool = False,
    ) -> None:
        """Count one ``action`` by ``ip``; raise ``RateLimited`` once past ``limit``.

        With ``failures``, first refuse an ``ip`` that already failed too often (that count
        is only read). Both counters travel in one round trip to the store, so a refused
        request still counts as an ``action``.
        """
        key = client_key(ip)
        checks: list[tuple[str, Limit, Hit]] = []
        if failures and self.failures is not None:
            checks.append(("failures", self.failures, _failure_hit(self.failures, key, cost=0)))
        if limit is not None:
            checks.append((action, limit, Hit(f"{action}:{key}", limit.window)))
        if not checks:
            return
        counts = await self.store.hits([hit for _, _, hit in checks], now=now)
        for (name, rule, hit), count in zip(checks, counts, strict=True):
            # A read (cost 0) refuses at the limit: the request it guards would pass it.
            if count > rule.count or (not hit.cost and count >= rule.count):
                retry_after = _seconds_to_window_end(rule.window, now)
                raise RateLimited(retry_after=retry_after, limit=name)

    async def record_failure(self, ip: str | None, *, now: datetime) -> None:
        """Count one failed reveal by ``ip``."""
        if self.failures is not None:
            await self.store.hits([_failure_hit(self.failures, client_key(ip))], now=now)


def _failure_hit(failures: Limit, key: str, *, cost: int = 1) -> Hit:
    return Hit(f"failed:{key}", failures.window, cost)


def _seconds_to_window_end(window: int, now: datetime) -> int:
    elapsed = now.timestamp() % window
    return max(1, int(window - elapsed + 0.999))
