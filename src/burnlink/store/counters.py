"""The part of the store contract that counts: fixed-window rate counters.

Shared by every process using the store; the service's rate limits
(``burnlink.service.rate_limits``) are built on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec

__all__ = ["Counters", "Hit", "over_limit"]


class Hit(msgspec.Struct, frozen=True):
    """One rate counter for ``SecretStore.hits``: add ``cost`` to ``bucket``'s current window
    of ``window`` seconds (``cost=0`` only reads it)."""

    bucket: str
    window: int
    cost: int = 1
    limit: int | None = None
    """For ``SecretRecords.create``: the total past which it refuses to insert."""


class Counters(Protocol):
    """Fixed-window counters, one per bucket name."""

    async def hit(self, bucket: str, *, window: int, now: datetime, cost: int = 1) -> int:
        """Atomically add ``cost`` to ``bucket``'s current fixed window of ``window`` seconds
        (windows start at multiples of ``window`` since the epoch); return the total so far in
        that window, this one included. ``cost=0`` reads without counting. Shared by every
        process using the store.
        """

    async def hits(self, hits: Sequence[Hit], *, now: datetime) -> list[int]:
        """``hit`` for each of ``hits``, their totals in the same order, in one round trip to
        the store (a request's rate limits are checked together). Each count is atomic on its
        own; the set is not one transaction.
        """

    async def clear_hits(self, bucket: str, *, window: int, now: datetime) -> int:
        """Delete ``bucket``'s current window of ``window`` seconds (as ``hit`` counts it);
        return the total it held (0 if none). For an operator lifting a lock early."""


def over_limit(hits: Sequence[Hit], counts: Sequence[int]) -> bool:
    """Whether any of ``counts`` (the totals of ``hits``, in order) passes its hit's limit."""
    return any(
        hit.limit is not None and count > hit.limit for hit, count in zip(hits, counts, strict=True)
    )
