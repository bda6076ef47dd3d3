"""The reference store, in process memory: for tests and ``burnlink serve --store memory://``.

Every method runs without awaiting, so on one event loop each is atomic. It keeps nothing
across restarts and is not shared between processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from burnlink.errors import DuplicateId
from burnlink.ids import digests_equal
from burnlink.models import (
    CodeCheck,
    CodePut,
    Consumed,
    EndReason,
    Event,
    ReceiptRecord,
    SecretMeta,
    SecretRecord,
)
from burnlink.store.counters import Hit, over_limit
from burnlink.store.identity import SessionRecord, TokenRecord, token_ended
from burnlink.store.memory_requests import MemoryRequests
from burnlink.store.outbox import Pending
from burnlink.store.secrets import (
    MAX_EVENTS_PER_KIND,
    STAND_IN_DIGEST,
    Attempt,
    Recorded,
    Reveal,
    ViewRecord,
    takes_view,
)


@dataclasses.dataclass(slots=True)
class _Live:
    record: SecretRecord
    views_left: int
    attempts_left: int


@dataclasses.dataclass(slots=True)
class _Code:
    digest: bytes
    put_at: datetime
    expires_at: datetime
    tries_left: int
    sent: int


class MemoryStore(MemoryRequests):
    """A ``SecretStore`` in a dict."""

    def __init__(self, *, retention: timedelta) -> None:
        self._retention = retention
        self._live: dict[str, _Live] = {}
        self._receipts: dict[str, ReceiptRecord] = {}
        self._codes: dict[str, _Code] = {}
        self._counters: dict[tuple[str, int], tuple[int, datetime]] = {}
        self._outbox: dict[int, bytes] = {}
        self._next_ref = 0
        self._owned: dict[str, list[str]] = {}
        self._sessions: dict[bytes, SessionRecord] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._token_ids: dict[bytes, str] = {}
        self._requests = {}

    async def create(
        self, record: SecretRecord, *, events: Sequence[Recorded] = (), hits: Sequence[Hit] = ()
    ) -> list[int]:
        """See ``SecretStore.create``."""
        if record.secret_id in self._live or record.secret_id in self._receipts:
            raise DuplicateId("secret id already taken")
        counts = await self.hits(hits, now=record.created_at)
        if over_limit(hits, counts):
            return counts
        self._live[record.secret_id] = _Live(record, record.max_views, record.max_attempts)
        self._receipts[record.secret_id] = ReceiptRecord(
            secret_id=record.secret_id,
            manage_digest=record.manage_digest,
            created_at=record.created_at,
            expires_at=record.expires_at,
            max_views=record.max_views,
            views_used=0,
            ended_at=None,
            end_reason=None,
            owner=record.owner,
            owner_email=record.owner_email,
            label=record.label,
        )
        if record.owner is not None:
            self._owned.setdefault(record.owner, []).append(record.secret_id)
        self._keep(record.secret_id, events)
        return counts

    def _alive(self, secret_id: str, now: datetime) -> _Live | None:
        live = self._live.get(secret_id)
        if live is None or live.record.expires_at <= now:
            return None
        return live

    async def peek(self, secret_id: str, *, now: datetime) -> SecretMeta | None:
        """See ``SecretStore.peek``."""
        live = self._alive(secret_id, now)
        return None if live is None else _meta(live)

    async def reveal(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        hits: Sequence[Hit],
        view: ViewRecord | None = None,
    ) -> Reveal:
        """See ``SecretStore.reveal``: nothing here awaits, so the whole is one step."""
        counts = await self.hits(hits, now=now)
        if over_limit(hits, counts):
            return Reveal(counts, None)
        live = self._alive(secret_id, now)
        # An id that is not live weighs a stand-in instead: the same work.
        meta = _meta(live if live is not None else _STAND_IN)
        takes = takes_view(meta, access_digest)
        if live is None:
            return Reveal(counts, None)
        if view is None or not takes:
            return Reveal(counts, meta)
        consumed = await self.consume(
            secret_id, access_digest, now=now, events=[view.completed(meta.max_views)]
        )
        return Reveal(counts, meta, consumed)

    async def consume(
        self,
        secret_id: str,
        access_digest: bytes,
        *,
        now: datetime,
        events: Sequence[Recorded] = (),
    ) -> Consumed | None:
        """See ``SecretStore.consume``."""
        live = self._alive(secret_id, now)
        if live is None or not digests_equal(access_digest, live.record.access_digest):
            return None
        live.views_left -= 1
        receipt = self._receipts[secret_id]
        self._receipts[secret_id] = dataclasses.replace(receipt, views_used=receipt.views_used + 1)
        self._keep(secret_id, events)
        receipt = self._receipts[secret_id]
        if live.views_left == 0:
            del self._live[secret_id]
            self._codes.pop(secret_id, None)
            receipt = dataclasses.replace(receipt, ended_at=now, end_reason=EndReason.VIEWED)
        self._receipts[secret_id] = receipt
        return Consumed(envelope=live.record.envelope, views_left=live.views_left)

    async def record_failure(
        self, secret_id: str, *, now: datetime, locks: bool, events: Sequence[Recorded] = ()
    ) -> Attempt | None:
        """See ``SecretStore.record_failure``."""
        live = self._alive(secret_id, now)
        if live is None:
            return None
        if (live.attempts_left == 1) != locks:
            return Attempt(counted=False, attempts_left=live.attempts_left)
        live.attempts_left -= 1
        self._keep(secret_id, events)
        if live.attempts_left == 0:
            self._end(secret_id, now, EndReason.LOCKED)
        return Attempt(counted=True, attempts_left=live.attempts_left)

    async def burn(
        self,
        secret_id: str,
        *,
        now: datetime,
        reason: EndReason = EndReason.BURNED,
        events: Sequence[Recorded] = (),
    ) -> bool:
        """See ``SecretStore.burn``."""
        if self._alive(secret_id, now) is None:
            return False
        self._keep(secret_id, events)
        self._end(secret_id, now, reason)
        return True

    def _end(self, secret_id: str, at: datetime, reason: EndReason) -> None:
        del self._live[secret_id]
        self._codes.pop(secret_id, None)
        receipt = self._receipts[secret_id]
        self._receipts[secret_id] = dataclasses.replace(receipt, ended_at=at, end_reason=reason)

    def _kept_until(self, receipt: ReceiptRecord) -> datetime:
        return (receipt.ended_at or receipt.expires_at) + self._retention

    async def receipt(self, secret_id: str, *, now: datetime) -> ReceiptRecord | None:
        """See ``SecretStore.receipt``."""
        receipt = self._receipts.get(secret_id)
        if receipt is None or self._kept_until(receipt) <= now:
            return None
        return receipt

    async def record(self, secret_id: str | None, events: Sequence[Recorded]) -> None:
        """See ``SecretStore.record``."""
        self._keep(secret_id, events)

    def _keep(self, secret_id: str | None, events: Sequence[Recorded]) -> None:
        receipt = None if secret_id is None else self._receipts.get(secret_id)
        for recorded in events:
            line = recorded.line
            if receipt is not None and line is not None and _has_room(receipt, line):
                receipt = dataclasses.replace(receipt, events=(*receipt.events, line))
            self._next_ref += 1
            self._outbox[self._next_ref] = recorded.outbox
        if receipt is not None:
            self._receipts[receipt.secret_id] = receipt

    async def pending_events(self, *, limit: int) -> list[Pending]:
        """See ``SecretStore.pending_events``."""
        refs = sorted(self._outbox)[:limit]
        return [Pending(str(ref), self._outbox[ref]) for ref in refs]

    async def ack_events(self, refs: Sequence[str]) -> None:
        """See ``SecretStore.ack_events``."""
        for ref in refs:
            self._outbox.pop(int(ref), None)

    async def put_code(
        self,
        secret_id: str,
        code_digest: bytes,
        *,
        now: datetime,
        expires_at: datetime,
        tries: int,
        resend_after: datetime,
        max_codes: int,
    ) -> CodePut:
        """See ``SecretStore.put_code``."""
        if self._alive(secret_id, now) is None:
            return CodePut.GONE
        current = self._codes.get(secret_id)
        sent = 0
        if current is not None:
            if current.put_at > resend_after:
                return CodePut.TOO_SOON
            if current.sent >= max_codes:
                return CodePut.TOO_SOON if self._code_live(current, now) else CodePut.SPENT
            sent = current.sent
        self._codes[secret_id] = _Code(code_digest, now, expires_at, tries, sent + 1)
        return CodePut.SENT

    @staticmethod
    def _code_live(code: _Code, now: datetime) -> bool:
        return code.expires_at > now and code.tries_left > 0

    async def check_code(
        self, secret_id: str, code_digest: bytes, *, now: datetime
    ) -> CodeCheck | None:
        """See ``SecretStore.check_code``."""
        code = self._codes.get(secret_id)
        if code is None or not self._code_live(code, now) or self._alive(secret_id, now) is None:
            return None
        if digests_equal(code.digest, code_digest):
            del self._codes[secret_id]
            return CodeCheck(matched=True, tries_left=code.tries_left)
        code.tries_left -= 1
        return CodeCheck(matched=False, tries_left=code.tries_left)

    async def hit(self, bucket: str, *, window: int, now: datetime, cost: int = 1) -> int:
        """See ``SecretStore.hit``."""
        start = int(now.timestamp()) // window * window
        ends = datetime.fromtimestamp(start + window, UTC)
        count, ends = self._counters.get((bucket, start), (0, ends))
        if cost:
            self._counters[(bucket, start)] = (count + cost, ends)
        return count + cost

    async def hits(self, hits: Sequence[Hit], *, now: datetime) -> list[int]:
        """See ``SecretStore.hits``."""
        return [await self.hit(h.bucket, window=h.window, now=now, cost=h.cost) for h in hits]

    async def clear_hits(self, bucket: str, *, window: int, now: datetime) -> int:
        """See ``SecretStore.clear_hits``."""
        start = int(now.timestamp()) // window * window
        count, _ = self._counters.pop((bucket, start), (0, now))
        return count

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """See ``SecretStore.purge_expired``."""
        expired = [sid for sid, live in self._live.items() if live.record.expires_at <= now][:limit]
        for secret_id in expired:
            self._end(secret_id, self._live[secret_id].record.expires_at, EndReason.EXPIRED)
        stale = [
            s
            for s, r in self._receipts.items()
            if s not in self._live and self._kept_until(r) <= now
        ]
        for secret_id in stale:
            receipt = self._receipts.pop(secret_id)
            if receipt.owner is not None:
                self._owned[receipt.owner].remove(secret_id)
        for digest in [d for d, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[digest]
        for token in [t for t in self._tokens.values() if self._token_gone(t, now)]:
            del self._tokens[token.token_id]
            del self._token_ids[token.digest]
        for key in [k for k, (_, ends) in self._counters.items() if ends <= now]:
            del self._counters[key]
        return len(expired)

    async def owned_secrets(self, owner: str, *, now: datetime, limit: int) -> list[ReceiptRecord]:
        """See ``OwnedSecrets.owned_secrets``."""
        receipts = [self._receipts[s] for s in self._owned.get(owner, ())]
        kept = [r for r in receipts if self._kept_until(r) > now]
        kept.sort(key=lambda r: (r.created_at, r.secret_id), reverse=True)
        return kept[:limit]

    async def put_session(self, record: SessionRecord) -> None:
        """See ``Sessions.put_session``."""
        if record.digest in self._sessions:
            raise DuplicateId("session already kept")
        self._sessions[record.digest] = record

    async def touch_session(
        self, digest: bytes, *, now: datetime, idle_seconds: int
    ) -> SessionRecord | None:
        """See ``Sessions.touch_session``."""
        session = self._sessions.get(digest)
        if session is None:
            return None
        if now >= session.expires_at or now - session.last_seen >= timedelta(seconds=idle_seconds):
            del self._sessions[digest]
            return None
        session = dataclasses.replace(session, last_seen=now)
        self._sessions[digest] = session
        return session

    async def end_session(self, digest: bytes) -> bool:
        """See ``Sessions.end_session``."""
        return self._sessions.pop(digest, None) is not None

    async def end_sessions_of(self, subject: str) -> int:
        """See ``Sessions.end_sessions_of``."""
        ended = [d for d, s in self._sessions.items() if s.subject == subject]
        for digest in ended:
            del self._sessions[digest]
        return len(ended)

    async def put_token(self, record: TokenRecord) -> None:
        """See ``ApiTokens.put_token``."""
        if record.digest in self._token_ids or record.token_id in self._tokens:
            raise DuplicateId("token already kept")
        self._tokens[record.token_id] = record
        self._token_ids[record.digest] = record.token_id

    async def use_token(self, digest: bytes, *, now: datetime) -> TokenRecord | None:
        """See ``ApiTokens.use_token``."""
        token_id = self._token_ids.get(digest)
        token = None if token_id is None else self._tokens[token_id]
        if token is None or token_ended(token, now) is not None:
            return None
        token = dataclasses.replace(token, last_used=now)
        self._tokens[token.token_id] = token
        return token

    def _token_gone(self, token: TokenRecord, now: datetime) -> bool:
        ended = token_ended(token, now)
        return ended is not None and ended + self._retention <= now

    async def list_tokens(self, subject: str, *, now: datetime) -> list[TokenRecord]:
        """See ``ApiTokens.list_tokens``."""
        tokens = [
            t
            for t in self._tokens.values()
            if t.subject == subject and not self._token_gone(t, now)
        ]
        tokens.sort(key=lambda t: (t.created_at, t.token_id), reverse=True)
        return tokens

    async def refresh_tokens(
        self, subject: str, *, email: str | None, groups: tuple[str, ...]
    ) -> int:
        """See ``ApiTokens.refresh_tokens``."""
        mine = [t for t in self._tokens.values() if t.subject == subject]
        for token in mine:
            self._tokens[token.token_id] = dataclasses.replace(token, email=email, groups=groups)
        return len(mine)

    async def all_tokens(self, *, now: datetime, limit: int) -> list[TokenRecord]:
        """See ``ApiTokens.all_tokens``."""
        tokens = [t for t in self._tokens.values() if not self._token_gone(t, now)]
        tokens.sort(key=lambda t: (t.created_at, t.token_id), reverse=True)
        return tokens[: max(limit, 0)]

    async def revoke_token(self, token_id: str, *, now: datetime, subject: str | None) -> bool:
        """See ``ApiTokens.revoke_token``."""
        token = self._tokens.get(token_id)
        if token is None or token_ended(token, now) is not None:
            return False
        if subject is not None and token.subject != subject:
            return False
        self._tokens[token_id] = dataclasses.replace(token, revoked_at=now)
        return True

    async def ping(self) -> None:
        """Always answers."""

    async def aclose(self) -> None:
        """Forget everything."""
        self._live.clear()
        self._receipts.clear()
        self._codes.clear()
        self._counters.clear()
        self._outbox.clear()
        self._owned.clear()
        self._sessions.clear()
        self._tokens.clear()
        self._token_ids.clear()


def _meta(live: _Live) -> SecretMeta:
    record = live.record
    return SecretMeta(
        secret_id=record.secret_id,
        access_digest=record.access_digest,
        created_at=record.created_at,
        expires_at=record.expires_at,
        max_views=record.max_views,
        views_left=live.views_left,
        attempts_left=live.attempts_left,
        passphrase=record.passphrase,
        policy=record.policy,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STAND_IN = _Live(
    SecretRecord(
        secret_id="",
        envelope=b"",
        access_digest=STAND_IN_DIGEST,
        manage_digest=STAND_IN_DIGEST,
        created_at=_EPOCH,
        expires_at=_EPOCH,
        max_views=1,
        max_attempts=5,
    ),
    1,
    5,
)
"""What a lookup of an id that is not live weighs instead (``store.secrets.STAND_IN_DIGEST``)."""


def _has_room(receipt: ReceiptRecord, event: Event) -> bool:
    """Whether ``receipt`` keeps another event of ``event``'s kind (``MAX_EVENTS_PER_KIND``)."""
    return sum(1 for kept in receipt.events if kept.kind is event.kind) < MAX_EVENTS_PER_KIND
