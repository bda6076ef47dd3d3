"""Requests in the in-memory store (``store/requests.py``): a dict, one step per call.

Nothing here awaits between reading and writing, so on one event loop each call is atomic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from burnlink.errors import DuplicateId
from burnlink.models import SecretRecord
from burnlink.store.requests import Answer, RequestRecord, RequestState, StoredRequest
from burnlink.store.secrets import Recorded

__all__ = ["MemoryRequests"]


@dataclasses.dataclass(slots=True)
class _Request:
    record: RequestRecord
    state: RequestState
    answered_at: datetime | None
    keep_until: datetime


class MemoryRequests:
    """``RequestRecords`` of ``MemoryStore``."""

    if TYPE_CHECKING:
        _retention: timedelta
        _live: Mapping[str, object]
        _receipts: Mapping[str, object]

        def _keep(self, secret_id: str | None, events: Sequence[Recorded]) -> None: ...

        async def create(
            self, record: SecretRecord, *, events: Sequence[Recorded] = ()
        ) -> list[int]: ...

    _requests: dict[str, _Request]

    def _request(self, request_id: str, now: datetime) -> _Request | None:
        found = self._requests.get(request_id)
        if found is None or found.keep_until <= now:
            return None
        return found

    async def create_request(self, record: RequestRecord, *, events: Sequence[Recorded]) -> None:
        """See ``RequestRecords.create_request``."""
        if record.request_id in self._requests:
            raise DuplicateId("request id already taken")
        keep = record.expires_at + self._retention
        self._requests[record.request_id] = _Request(record, RequestState.OPEN, None, keep)
        self._keep(None, events)

    async def get_request(self, request_id: str, *, now: datetime) -> StoredRequest | None:
        """See ``RequestRecords.get_request``."""
        found = self._request(request_id, now)
        if found is None:
            return None
        state = found.state
        if state is RequestState.OPEN and found.record.expires_at <= now:
            state = RequestState.EXPIRED
        return StoredRequest(found.record, state, found.answered_at)

    async def answer_request(
        self, record: SecretRecord, *, now: datetime, events: Sequence[Recorded]
    ) -> Answer:
        """See ``RequestRecords.answer_request``."""
        found = self._request(record.secret_id, now)
        if found is None:
            return Answer.GONE
        if found.state is RequestState.ANSWERED:
            return Answer.TAKEN
        if found.state is RequestState.EXPIRED or found.record.expires_at <= now:
            return Answer.EXPIRED
        if record.secret_id in self._live or record.secret_id in self._receipts:
            raise DuplicateId("secret id already taken")
        await self.create(record, events=events)  # awaits nothing: still one step
        found.state = RequestState.ANSWERED
        found.answered_at = now
        found.keep_until = max(found.keep_until, record.expires_at + self._retention)
        return Answer.ANSWERED

    async def due_requests(self, *, now: datetime, limit: int) -> list[str]:
        """See ``RequestRecords.due_requests``."""
        due = [
            rid
            for rid, r in self._requests.items()
            if r.state is RequestState.OPEN and r.record.expires_at <= now
        ]
        return due[:limit]

    async def expire_request(
        self, request_id: str, *, now: datetime, events: Sequence[Recorded]
    ) -> bool:
        """See ``RequestRecords.expire_request``."""
        found = self._request(request_id, now)
        if found is None or found.state is not RequestState.OPEN:
            return False
        if found.record.expires_at > now:
            return False
        found.state = RequestState.EXPIRED
        self._keep(None, events)
        return True

    async def purge_requests(self, *, now: datetime, limit: int) -> int:
        """See ``RequestRecords.purge_requests``."""
        stale = [rid for rid, r in self._requests.items() if r.keep_until <= now][:limit]
        for request_id in stale:
            del self._requests[request_id]
        return len(stale)
