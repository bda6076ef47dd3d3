"""The part of the store contract that holds recorded events until they are sealed.

Every call of ``SecretRecords`` that changes a secret keeps its ``Recorded`` events in the same
atomic step: each one's receipt line on the secret's receipt (capped per kind) and its outbox
record here, until the sealer (``audit.sealer``) has appended it to the audit log and
acknowledges it. The records are opaque bytes to the store (``audit.outbox``) and come back
byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from burnlink.redacted import Redacted

__all__ = ["EventOutbox", "Pending"]


class Pending(Redacted, frozen=True):
    """An outbox record not yet acknowledged, under the store's own name for it."""

    ref: str
    outbox: bytes

    _HIDDEN: ClassVar[tuple[str, ...]] = ("outbox",)


class EventOutbox(Protocol):
    """The outbox of recorded events."""

    async def pending_events(self, *, limit: int) -> list[Pending]:
        """Up to ``limit`` outbox records not yet acknowledged, oldest first. Reads only:
        concurrent callers may get the same records (the audit log seals each id once)."""

    async def ack_events(self, refs: Sequence[str]) -> None:
        """Delete these outbox records (by ``Pending.ref``); refs already gone are ignored."""
