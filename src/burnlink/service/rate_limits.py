"""Rate limits per client, counted in the store so every server process shares them.

A limit reads like ``10/minute`` or ``30/10 minutes`` (units: second, minute, hour, day;
``off`` disables it). Clients are keyed by IPv4 address or IPv6 /64, since one IPv6 host
usually owns a /64.

Failed reveals are counted twice: per client and secret (``failed:<client>:<id>``), which
locks that one link for that client first, and per client (``failed:<client>``), a higher,
short limit against a client failing across many links. Failed admin tokens are counted per
client (``admin-failed:<client>``). ``burnlink unlock`` clears a client's failure counters.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from burnlink.config import Limit
from burnlink.errors import RateLimited
from burnlink.policy import parse_ip
from burnlink.store import Hit, SecretStore


@functools.lru_cache(maxsize=4096)
def client_key(ip: str | None) -> str:
    """The rate-limit identity of an address: IPv4 as is, IPv6 by its /64."""
    address = parse_ip(ip)
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One rate limit a request is judged by: its name (as ``RateLimited.limit`` gives it),
    its rule and the counter it hits."""

    name: str
    rule: Limit
    hit: Hit
    limited: Hit = field(init=False, repr=False, compare=False)
    """``hit`` with the limit a store compares its total to (``SecretRecords.create``,
    ``SecretRecords.reveal``): past ``rule.count`` when it counts, at it when it only reads,
    as ``judge`` does. Made once here: a request reads it twice per limit."""

    def __post_init__(self) -> None:
        hit = self.hit
        limit = self.rule.count if hit.cost else self.rule.count - 1
        object.__setattr__(self, "limited", Hit(hit.bucket, hit.window, hit.cost, limit))


class RateLimiter:
    """Counts events per client in the store and refuses those over a limit.

    Failed reveals (wrong key, wrong passphrase or code, refused address) are counted apart:
    a client past ``secret_failures`` on one secret is refused that secret, and a client past
    ``failures`` is refused every reveal, each until its window ends.
    """

    def __init__(
        self,
        store: SecretStore,
        failures: Limit | None,
        secret_failures: Limit | None = None,
        admin_failures: Limit | None = None,
    ) -> None:
        self.store = store
        self.failures = failures
        self.secret_failures = secret_failures
        self.admin_failures = admin_failures

    def rule(self, name: str, limit: Limit | None = None) -> Limit | None:
        """The limit named ``name`` in a ``RateLimited``: a failure limit, else ``limit``."""
        return {
            "failures": self.failures,
            "secret_failures": self.secret_failures,
            "admin": self.admin_failures,
        }.get(name, limit)

    def checks(
        self,
        action: str,
        limit: Limit | None,
        ip: str | None,
        *,
        failures: bool = False,
        secret_id: str | None = None,
    ) -> list[LimitCheck]:
        """The counters one ``action`` by ``ip`` hits: its own limit (counted), and with
        ``failures`` the failure counts on ``secret_id`` and on the client (only read).

        Send their ``hit``s to the store in one round trip (``hits``, or with the lookup,
        ``reveal``, as ``limited`` hits so that it takes no view past a limit), then ``judge``
        the totals.
        """
        key = client_key(ip)
        shared = _client_checks(action, limit, self.failures if failures else None, key)
        if failures and self.secret_failures is not None and secret_id is not None:
            hit = _secret_failure_hit(self.secret_failures, key, secret_id, cost=0)
            return [LimitCheck("secret_failures", self.secret_failures, hit), *shared]
        return list(shared)

    @staticmethod
    def judge(checks: Sequence[LimitCheck], counts: Sequence[int], *, now: datetime) -> None:
        """Raise ``RateLimited`` for the first of ``checks`` whose total in ``counts`` (the
        store's answer, in the same order) is past its limit."""
        for check, count in zip(checks, counts, strict=True):
            # A read (cost 0) refuses at the limit: the request it guards would pass it
            # (``limited``'s limit is one lower then: ``over_limit`` of it, written out).
            limit = check.limited.limit
            if limit is not None and count > limit:
                raise RateLimited(
                    _seconds_to_window_end(check.rule.window, now),
                    limit=check.name,
                    why=_WHY.get(check.name) or "",
                )

    async def check(
        self,
        action: str,
        limit: Limit | None,
        ip: str | None,
        *,
        now: datetime,
        failures: bool = False,
        secret_id: str | None = None,
    ) -> None:
        """Count one ``action`` by ``ip``; raise ``RateLimited`` once past ``limit``.

        With ``failures``, first refuse an ``ip`` that already failed too often on
        ``secret_id``, or at all (those counts are only read). All counters travel in one
        round trip to the store, so a refused request still counts as an ``action``.
        """
        checks = self.checks(action, limit, ip, failures=failures, secret_id=secret_id)
        if checks:
            counts = await self.store.hits([check.hit for check in checks], now=now)
            self.judge(checks, counts, now=now)

    async def record_failure(
        self, ip: str | None, *, now: datetime, secret_id: str | None = None
    ) -> None:
        """Count one failed reveal by ``ip`` (on ``secret_id``, when it names one)."""
        key = client_key(ip)
        hits = []
        if self.failures is not None:
            hits.append(_failure_hit(self.failures, key))
        if self.secret_failures is not None and secret_id is not None:
            hits.append(_secret_failure_hit(self.secret_failures, key, secret_id))
        if hits:
            await self.store.hits(hits, now=now)

    async def check_admin(self, ip: str | None, *, now: datetime) -> None:
        """Refuse an ``ip`` that gave too many wrong admin tokens (``RateLimited``)."""
        rule = self.admin_failures
        if rule is None:
            return
        # Only read (cost 0): checking a token does not count as a wrong one.
        (count,) = await self.store.hits(
            [_admin_failure_hit(rule, client_key(ip), cost=0)], now=now
        )
        if count >= rule.count:
            raise RateLimited(
                _seconds_to_window_end(rule.window, now), limit="admin", why=_WHY["admin"]
            )

    async def record_admin_failure(self, ip: str | None, *, now: datetime) -> None:
        """Count one wrong admin token by ``ip``."""
        if self.admin_failures is not None:
            await self.store.hits(
                [_admin_failure_hit(self.admin_failures, client_key(ip))], now=now
            )

    async def unlock(self, ip: str, *, now: datetime, secret_ids: Sequence[str] = ()) -> int:
        """Clear ``ip``'s client-wide failure and admin-token counters, and its failures on
        ``secret_ids``, in their current windows; return how many failures were cleared."""
        key = client_key(ip)
        hits = []
        if self.failures is not None:
            hits.append(_failure_hit(self.failures, key))
        if self.admin_failures is not None:
            hits.append(_admin_failure_hit(self.admin_failures, key))
        if self.secret_failures is not None:
            hits += [_secret_failure_hit(self.secret_failures, key, s) for s in secret_ids]
        cleared = 0
        for hit in hits:
            cleared += await self.store.clear_hits(hit.bucket, window=hit.window, now=now)
        return cleared


_WHY = {
    "failures": "Too many failed attempts from your network (wrong or used links, passphrases,"
    " codes or sign-ins)",
    "secret_failures": "Too many failed attempts on this link from your network",
    "admin": "Too many wrong admin tokens from your network",
}


@functools.lru_cache(maxsize=4096)
def _client_checks(
    action: str, limit: Limit | None, failures: Limit | None, key: str
) -> tuple[LimitCheck, ...]:
    """The checks of ``RateLimiter.checks`` that do not name a secret, in its order: the
    client's failures (read), then ``action``'s own limit (counted). The same few for every
    request from one client: made once, not per request."""
    checks: list[LimitCheck] = []
    if failures is not None:
        checks.append(LimitCheck("failures", failures, _failure_hit(failures, key, cost=0)))
    if limit is not None:
        checks.append(LimitCheck(action, limit, Hit(f"{action}:{key}", limit.window)))
    return tuple(checks)


def _failure_hit(failures: Limit, key: str, *, cost: int = 1) -> Hit:
    return Hit(f"failed:{key}", failures.window, cost)


def _secret_failure_hit(failures: Limit, key: str, secret_id: str, *, cost: int = 1) -> Hit:
    # Ids are checked (22 base64url characters) before they get here, so a bucket stays short.
    return Hit(f"failed:{key}:{secret_id}", failures.window, cost)


def _admin_failure_hit(failures: Limit, key: str, *, cost: int = 1) -> Hit:
    return Hit(f"admin-failed:{key}", failures.window, cost)


def _seconds_to_window_end(window: int, now: datetime) -> int:
    elapsed = now.timestamp() % window
    return max(1, int(window - elapsed + 0.999))
