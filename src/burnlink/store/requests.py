"""The part of the store contract that keeps requests for a secret (issue 16).

A request is asked for by a *requester* and answered once by whoever holds its request link.
The store keeps, per request, the digests of its two tokens (the requester's and the request
link's), the requester's public key, a description, its expiry, who may answer, the answer's
TTL and views, and its state. The answer itself is an ordinary secret with **the request's
id** (``SecretRecord``, created by ``answer_request``): every backend keeps a secret's keys by
its id, so on Redis Cluster the request and its answer share one hash tag and one script can
close the one and create the other.

Rules every backend keeps, on top of ``burnlink.store.contract``'s:

- ``answer_request`` is exactly once: with K concurrent callers on an open request, one
  creates the answer and closes the request, atomically, with both's events; the others
  change and keep nothing and learn why (``Answer``), across processes too.
- A request whose ``expires_at <= now`` is treated as expired by every call, before any sweep.
- Events (``request.created``, ``request.answered``, ``request.expired``) are kept in the same
  atomic step as the change they describe, or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from burnlink.models import SecretRecord
from burnlink.store.secrets import Recorded

__all__ = ["Answer", "RequestRecord", "RequestRecords", "RequestState", "StoredRequest"]


class RequestState(StrEnum):
    """Where a request stands."""

    OPEN = "open"
    """Waiting for its answer."""
    ANSWERED = "answered"
    """Answered: its answer is the secret with the request's id."""
    EXPIRED = "expired"
    """Its time ran out unanswered."""


class Answer(StrEnum):
    """What ``answer_request`` did."""

    ANSWERED = "answered"
    """The answer was stored and the request closed, with their events."""
    TAKEN = "taken"
    """Nothing changed: the request was answered already."""
    EXPIRED = "expired"
    """Nothing changed: the request's time ran out."""
    GONE = "gone"
    """Nothing changed: no such request (or kept no longer)."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A new request as the store keeps it. Digests of tokens, never tokens."""

    request_id: str
    requester_digest: bytes = field(repr=False)
    """SHA-256 of the requester's token: status, waiting, opening the answer."""
    answer_digest: bytes = field(repr=False)
    """SHA-256 of the request link's token: the answering side's view and its answer."""
    public_key: bytes
    """The requester's P-256 public key, uncompressed SEC1 (65 bytes)."""
    description: str
    created_at: datetime
    expires_at: datetime
    answer_ttl: int
    """Seconds the answer lives once given."""
    answer_views: int
    """Views the answer allows."""
    recipients: tuple[str, ...] = ()
    """Who may answer once signed in (``policy.parse_recipients`` entries); empty: anyone with
    the request link."""
    notify_url: str | None = field(default=None, repr=False)
    """Webhook told ``request.fulfilled`` (may hold a token: never logged)."""
    notify_email: str | None = field(default=None, repr=False)
    """Address told by email that the request was answered."""
    owner: str | None = None
    """The signed-in requester's subject; ``None``: anonymous."""
    owner_email: str | None = None


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A request as ``get_request`` finds it."""

    record: RequestRecord
    state: RequestState
    """``EXPIRED`` for an open request past its ``expires_at``, swept or not."""
    answered_at: datetime | None = None


class RequestRecords(Protocol):
    """Requests for a secret, and their one answer."""

    async def create_request(self, record: RequestRecord, *, events: Sequence[Recorded]) -> None:
        """Insert an open request with ``events``, atomically; a taken id raises
        ``DuplicateId`` and keeps nothing. Kept until ``retention`` after ``expires_at``."""

    async def get_request(self, request_id: str, *, now: datetime) -> StoredRequest | None:
        """The request, or ``None`` (unknown, or past retention). Never mutates."""

    async def answer_request(
        self, record: SecretRecord, *, now: datetime, events: Sequence[Recorded]
    ) -> Answer:
        """Close the open, unexpired request ``record.secret_id`` as answered at ``now`` and
        create ``record`` (as ``SecretRecords.create``, without counters) with ``events``, in
        one atomic step; the request is then kept until ``retention`` after the later of its
        own and the answer's expiry. Exactly once under concurrency; anything but
        ``ANSWERED`` changes and keeps nothing."""

    async def due_requests(self, *, now: datetime, limit: int) -> list[str]:
        """Up to ``limit`` ids of open requests whose ``expires_at <= now`` (for the sweep)."""

    async def expire_request(
        self, request_id: str, *, now: datetime, events: Sequence[Recorded]
    ) -> bool:
        """Mark an open request past its ``expires_at`` as expired with ``events``, atomically;
        ``False`` (keeping nothing) if it is not open or not due. Exactly once."""

    async def purge_requests(self, *, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` requests kept past their retention; how many went."""
