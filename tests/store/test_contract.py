"""The storage contract (``burnlink.store.contract``), run on every backend through ``store``."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import msgspec
import pytest

from burnlink.clock import FrozenClock
from burnlink.errors import DuplicateId
from burnlink.ids import new_secret_id, token_digest
from burnlink.models import (
    AccessPolicy,
    CodePut,
    Consumed,
    EndReason,
    Event,
    EventKind,
    PassphraseGate,
    SecretRecord,
    Viewer,
)
from burnlink.store import SecretStore
from burnlink.store.counters import Hit
from burnlink.store.secrets import (
    MAX_EVENTS_PER_KIND,
    NO_RULES_PREFIX,
    Attempt,
    Recorded,
    Reveal,
    ViewRecord,
)
from tests.conftest import RETENTION

pytestmark = pytest.mark.anyio

ACCESS = token_digest(b"access token")


def kept(line: Event | None, outbox: bytes = b"record") -> Recorded:
    """An event for a store call: its receipt line and opaque outbox bytes."""
    return Recorded(line, outbox)


MANAGE = token_digest(b"manage token")


def make_record(
    clock: FrozenClock,
    *,
    views: int = 1,
    attempts: int = 5,
    ttl: float = 3600,
    envelope: bytes = b'{"v":1,"ct":"opaque"}',
    passphrase: PassphraseGate | None = None,
) -> SecretRecord:
    now = clock.now()
    return SecretRecord(
        secret_id=new_secret_id(),
        envelope=envelope,
        access_digest=ACCESS,
        manage_digest=MANAGE,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
        max_views=views,
        max_attempts=attempts,
        passphrase=passphrase,
    )


async def lock_out(store: SecretStore, secret_id: str, *, now: datetime) -> None:
    """Count wrong passphrases as the service does (the last one with ``locks=True``) until
    the secret is locked."""
    meta = await store.peek(secret_id, now=now)
    assert meta is not None
    for left in range(meta.attempts_left, 0, -1):
        attempt = await store.record_failure(secret_id, now=now, locks=left == 1)
        assert attempt == Attempt(counted=True, attempts_left=left - 1)


async def test_create_then_peek_returns_metadata(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock, views=3, attempts=4)
    await store.create(record)

    meta = await store.peek(record.secret_id, now=clock.now())

    assert meta is not None
    assert meta.secret_id == record.secret_id
    assert meta.access_digest == ACCESS
    assert meta.created_at == record.created_at
    assert meta.expires_at == record.expires_at
    assert (meta.max_views, meta.views_left, meta.attempts_left) == (3, 3, 4)
    assert meta.passphrase is None


async def test_create_keeps_passphrase_gate(store: SecretStore, clock: FrozenClock) -> None:
    gate = PassphraseGate(
        kdf="pbkdf2-sha256", iterations=600_000, salt=b"\x00salt\xff" * 2, proof_digest=MANAGE
    )
    record = make_record(clock, passphrase=gate)
    await store.create(record)

    meta = await store.peek(record.secret_id, now=clock.now())

    assert meta is not None
    assert meta.passphrase == gate


async def test_create_refuses_a_taken_id(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock, envelope=b"first")
    await store.create(record)

    with pytest.raises(DuplicateId):
        await store.create(msgspec.structs.replace(record, envelope=b"second"))

    consumed = await store.consume(record.secret_id, ACCESS, now=clock.now())
    assert consumed is not None
    assert consumed.envelope == b"first"


async def test_create_counts_its_hits_and_inserts_up_to_the_limit(
    store: SecretStore, clock: FrozenClock
) -> None:
    clock.advance(60 - clock.now().timestamp() % 60)  # the start of a minute
    hits = [Hit("create:192.0.2.20", 60, limit=2), Hit("other:192.0.2.20", 60, cost=0)]
    records = [make_record(clock) for _ in range(3)]

    counts = [
        await store.create(r, events=[kept(Event(clock.now(), EventKind.CREATED))], hits=hits)
        for r in records
    ]

    assert counts == [[1, 0], [2, 0], [3, 0]]
    assert await store.peek(records[1].secret_id, now=clock.now()) is not None
    assert await store.peek(records[2].secret_id, now=clock.now()) is None
    assert await store.receipt(records[2].secret_id, now=clock.now()) is None
    assert len(await store.pending_events(limit=10)) == 2
    assert await store.create(records[2]) == []
    assert await store.hit("create:192.0.2.20", window=60, now=clock.now(), cost=0) == 3


async def test_create_counts_a_counter_hit_twice_one_hit_after_the_other(
    store: SecretStore, clock: FrozenClock
) -> None:
    clock.advance(60 - clock.now().timestamp() % 60)  # the start of a minute
    bucket = "create:192.0.2.23"
    hits = [Hit(bucket, 60, limit=5), Hit(bucket, 60, cost=0), Hit(bucket, 60, cost=2, limit=5)]

    assert await store.create(make_record(clock), hits=hits) == [1, 1, 3]
    assert await store.create(make_record(clock), hits=hits) == [4, 4, 6]
    assert await store.hit(bucket, window=60, now=clock.now(), cost=0) == 6


async def test_create_with_hits_refuses_a_taken_id(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock, envelope=b"first")
    await store.create(record, hits=[Hit("create:192.0.2.22", 60, limit=5)])

    with pytest.raises(DuplicateId):
        await store.create(
            msgspec.structs.replace(record, envelope=b"second"),
            events=[kept(None, b"taken")],
            hits=[Hit("create:192.0.2.22", 60, limit=5)],
        )

    consumed = await store.consume(record.secret_id, ACCESS, now=clock.now())
    assert consumed is not None
    assert consumed.envelope == b"first"
    assert b"taken" not in await outbox(store)


async def test_create_past_a_limit_can_be_swept_and_created_later(
    store: SecretStore, clock: FrozenClock
) -> None:
    hit = Hit("create:192.0.2.21", 60, limit=0)
    refused = make_record(clock, ttl=60)

    assert await store.create(refused, hits=[hit]) == [1]
    clock.advance(61)
    assert await store.purge_expired(now=clock.now(), limit=100) == 0
    again = msgspec.structs.replace(
        refused, created_at=clock.now(), expires_at=clock.now() + timedelta(seconds=60)
    )
    assert await store.create(again) == []
    assert await store.peek(refused.secret_id, now=clock.now()) is not None


async def test_create_lets_exactly_the_limit_through_under_concurrency(
    store: SecretStore, clock: FrozenClock
) -> None:
    created: list[int] = []
    hits = [Hit("create:198.51.100.20", 3600, limit=4)]

    async def create() -> None:
        record = make_record(clock)
        (count,) = await store.create(record, hits=hits)
        if await store.peek(record.secret_id, now=clock.now()) is not None:
            created.append(count)

    async with anyio.create_task_group() as group:
        for _ in range(12):
            group.start_soon(create)

    assert sorted(created) == [1, 2, 3, 4]


async def test_peek_unknown_id_is_none(store: SecretStore, clock: FrozenClock) -> None:
    assert await store.peek(new_secret_id(), now=clock.now()) is None


async def test_peek_does_not_consume(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)

    for _ in range(3):
        assert await store.peek(record.secret_id, now=clock.now()) is not None

    assert await store.consume(record.secret_id, ACCESS, now=clock.now()) is not None


async def test_consume_returns_exact_envelope_bytes(store: SecretStore, clock: FrozenClock) -> None:
    envelope = bytes(range(256)) * 40
    record = make_record(clock, envelope=envelope)
    await store.create(record)

    consumed = await store.consume(record.secret_id, ACCESS, now=clock.now())

    assert consumed is not None
    assert consumed.envelope == envelope
    assert consumed.views_left == 0


async def test_consume_counts_down_and_ends_at_zero(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock, views=3)
    await store.create(record)

    left = []
    for _ in range(3):
        consumed = await store.consume(record.secret_id, ACCESS, now=clock.now())
        assert consumed is not None
        left.append(consumed.views_left)

    assert left == [2, 1, 0]
    assert await store.consume(record.secret_id, ACCESS, now=clock.now()) is None
    assert await store.peek(record.secret_id, now=clock.now()) is None
    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.views_used == 3
    assert receipt.end_reason is EndReason.VIEWED
    assert receipt.ended_at == clock.now()


async def test_consume_with_wrong_access_digest_counts_nothing(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, views=1)
    await store.create(record)

    assert await store.consume(record.secret_id, token_digest(b"wrong"), now=clock.now()) is None

    meta = await store.peek(record.secret_id, now=clock.now())
    assert meta is not None
    assert meta.views_left == 1
    assert await store.consume(record.secret_id, ACCESS, now=clock.now()) is not None


async def test_consume_unknown_id_is_none(store: SecretStore, clock: FrozenClock) -> None:
    assert await store.consume(new_secret_id(), ACCESS, now=clock.now()) is None


async def test_expired_secret_is_gone_before_any_sweep(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, ttl=60, views=5)
    await store.create(record)
    clock.advance(59.999)
    assert await store.peek(record.secret_id, now=clock.now()) is not None

    clock.advance(0.001)

    assert await store.peek(record.secret_id, now=clock.now()) is None
    assert await store.consume(record.secret_id, ACCESS, now=clock.now()) is None
    for locks in (False, True):
        assert await store.record_failure(record.secret_id, now=clock.now(), locks=locks) is None
    assert await store.burn(record.secret_id, now=clock.now()) is False
    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.state(clock.now()) == "expired"


async def test_record_failure_counts_down_and_locks_at_zero(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, attempts=3)
    await store.create(record)

    results = [
        await store.record_failure(record.secret_id, now=clock.now(), locks=locks)
        for locks in (False, False, True)
    ]

    assert results == [Attempt(True, 2), Attempt(True, 1), Attempt(True, 0)]
    assert await store.peek(record.secret_id, now=clock.now()) is None
    assert await store.consume(record.secret_id, ACCESS, now=clock.now()) is None
    for locks in (False, True):
        assert await store.record_failure(record.secret_id, now=clock.now(), locks=locks) is None
    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.end_reason is EndReason.LOCKED
    assert receipt.views_used == 0


async def test_record_failure_counts_only_when_it_locks_as_told(
    store: SecretStore, clock: FrozenClock
) -> None:
    """An attempt said to lock is not counted while more are left; one said not to lock is
    not counted when it would; neither changes anything then."""
    record = make_record(clock, attempts=2)
    await store.create(record)
    now = clock.now()

    too_early = await store.record_failure(record.secret_id, now=now, locks=True)
    counted = await store.record_failure(record.secret_id, now=now, locks=False)
    would_lock = await store.record_failure(record.secret_id, now=now, locks=False)
    meta = await store.peek(record.secret_id, now=now)
    receipt = await store.receipt(record.secret_id, now=now)

    assert (too_early, counted, would_lock) == (
        Attempt(counted=False, attempts_left=2),
        Attempt(counted=True, attempts_left=1),
        Attempt(counted=False, attempts_left=1),
    )
    assert meta is not None
    assert meta.attempts_left == 1
    assert receipt is not None
    assert (receipt.state(now), receipt.end_reason) == ("active", None)

    assert await store.record_failure(record.secret_id, now=now, locks=True) == Attempt(True, 0)
    assert await store.peek(record.secret_id, now=now) is None
    receipt = await store.receipt(record.secret_id, now=now)
    assert receipt is not None
    assert receipt.end_reason is EndReason.LOCKED


async def test_burn_deletes_and_ends_receipt(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock, views=2)
    await store.create(record)
    clock.advance(5)

    assert await store.burn(record.secret_id, now=clock.now()) is True

    assert await store.peek(record.secret_id, now=clock.now()) is None
    assert await store.consume(record.secret_id, ACCESS, now=clock.now()) is None
    assert await store.burn(record.secret_id, now=clock.now()) is False
    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert (receipt.end_reason, receipt.ended_at) == (EndReason.BURNED, clock.now())


async def test_burn_unknown_id_is_false(store: SecretStore, clock: FrozenClock) -> None:
    assert await store.burn(new_secret_id(), now=clock.now()) is False


async def test_receipt_of_live_secret(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock, views=4)
    await store.create(record)
    await store.consume(record.secret_id, ACCESS, now=clock.now())

    receipt = await store.receipt(record.secret_id, now=clock.now())

    assert receipt is not None
    assert receipt.manage_digest == MANAGE
    assert (receipt.created_at, receipt.expires_at) == (record.created_at, record.expires_at)
    assert (receipt.max_views, receipt.views_used) == (4, 1)
    assert (receipt.ended_at, receipt.end_reason) == (None, None)
    assert receipt.state(clock.now()) == "active"


async def test_receipt_unknown_id_is_none(store: SecretStore, clock: FrozenClock) -> None:
    assert await store.receipt(new_secret_id(), now=clock.now()) is None


async def test_receipt_kept_for_retention_after_end(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)
    await store.burn(record.secret_id, now=clock.now())

    clock.advance(RETENTION.total_seconds() - 1)
    assert await store.receipt(record.secret_id, now=clock.now()) is not None

    clock.advance(1)
    assert await store.receipt(record.secret_id, now=clock.now()) is None


async def test_receipt_of_expired_secret_kept_for_retention_after_expiry(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, ttl=60)
    await store.create(record)

    clock.advance(60 + RETENTION.total_seconds() - 1)
    assert await store.receipt(record.secret_id, now=clock.now()) is not None

    clock.advance(1)
    assert await store.receipt(record.secret_id, now=clock.now()) is None


async def test_record_keeps_order_and_fields(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)
    first = Event(at=clock.now(), kind=EventKind.CREATED, ip="2001:db8::1", user_agent="curl/8 ü")
    clock.advance(1.5)
    second = Event(at=clock.now(), kind=EventKind.VIEWED, ip=None, user_agent=None)

    await store.record(record.secret_id, [kept(first)])
    await store.record(record.secret_id, [kept(second)])

    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.events == (first, second)


async def test_receipt_lines_keep_their_viewer(store: SecretStore, clock: FrozenClock) -> None:
    """A line made for a signed-in recipient names them (email, second factor) through every
    call that keeps lines, at any position; anonymous lines name nobody."""
    record = make_record(clock, views=2, passphrase=None)
    created = Event(at=clock.now(), kind=EventKind.CREATED, ip="203.0.113.9")
    await store.create(record, events=[kept(created)])
    opened = Event(at=clock.now(), kind=EventKind.OPENED, ip="203.0.113.7")
    odd = Viewer(email='"al\nice"+<b>@exämple.com', mfa=False)
    refused = Event(at=clock.now(), kind=EventKind.VERIFICATION_FAILED, viewer=odd)
    await store.record(record.secret_id, [kept(opened), kept(refused)])
    clock.advance(1)
    alice = Viewer(email="alice@example.com", mfa=True)
    viewed = Event(at=clock.now(), kind=EventKind.VIEWED, ip="203.0.113.7", viewer=alice)
    assert await store.consume(record.secret_id, ACCESS, now=clock.now(), events=[kept(viewed)])
    no_email = Viewer(email=None, mfa=True)
    last = Event(at=clock.now(), kind=EventKind.VIEWED, user_agent="cli", viewer=no_email)
    assert await store.consume(record.secret_id, ACCESS, now=clock.now(), events=[kept(last)])

    receipt = await store.receipt(record.secret_id, now=clock.now())

    assert receipt is not None
    assert receipt.events == (created, opened, refused, viewed, last)
    assert [e.viewer for e in receipt.events] == [None, None, odd, alice, no_email]


async def test_a_counted_attempt_keeps_its_lines_viewer(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, attempts=1)
    await store.create(record)
    bob = Viewer(email="bob@example.com", mfa=False)
    failed = Event(at=clock.now(), kind=EventKind.WRONG_PASSPHRASE, ip="198.51.100.1", viewer=bob)
    locked = Event(at=clock.now(), kind=EventKind.LOCKED, ip="198.51.100.1", viewer=bob)

    await store.record_failure(
        record.secret_id, now=clock.now(), locks=True, events=[kept(failed), kept(locked)]
    )

    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.events == (failed, locked)


async def test_record_is_capped(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)

    for _ in range(MAX_EVENTS_PER_KIND + 5):
        await store.record(record.secret_id, [kept(Event(at=clock.now(), kind=EventKind.VIEWED))])

    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert len(receipt.events) == MAX_EVENTS_PER_KIND


async def test_create_stores_its_event_as_the_receipts_first(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, views=2)
    created = Event(at=clock.now(), kind=EventKind.CREATED, ip="203.0.113.9", user_agent="cli")

    await store.create(record, events=[kept(created)])

    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.events == (created,)


async def test_consume_appends_its_event_only_when_it_takes_a_view(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, views=2)
    await store.create(record)
    first = Event(at=clock.now(), kind=EventKind.VIEWED, ip="2001:db8::1", user_agent="curl/8")
    clock.advance(1)
    last = Event(at=clock.now(), kind=EventKind.VIEWED, ip=None, user_agent=None)
    refused = Event(at=clock.now(), kind=EventKind.VIEWED, ip="198.51.100.7")

    assert await store.consume(record.secret_id, token_digest(b"wrong"), now=clock.now(),
                               events=[kept(refused)]) is None  # fmt: skip
    assert await store.consume(record.secret_id, ACCESS, now=clock.now(), events=[kept(first)])
    assert await store.consume(record.secret_id, ACCESS, now=clock.now(), events=[kept(last)])
    assert (
        await store.consume(record.secret_id, ACCESS, now=clock.now(), events=[kept(refused)])
        is None
    )

    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.events == (first, last)
    assert receipt.end_reason is EndReason.VIEWED


async def test_a_flood_of_opens_never_pushes_out_the_events_a_sender_relies_on(
    store: SecretStore, clock: FrozenClock
) -> None:
    """The cap is per kind: opens past it are dropped, while the view, a refusal and the end
    are still kept (they were dropped once 200 opens filled the receipt)."""
    record = make_record(clock, views=2)
    created = Event(at=clock.now(), kind=EventKind.CREATED)
    await store.create(record, events=[kept(created)])
    for _ in range(MAX_EVENTS_PER_KIND + 5):
        await store.record(record.secret_id, [kept(Event(at=clock.now(), kind=EventKind.OPENED))])

    viewed = Event(at=clock.now(), kind=EventKind.VIEWED, ip="198.51.100.2")
    denied = Event(at=clock.now(), kind=EventKind.IP_DENIED, ip="203.0.113.9")
    burned = Event(at=clock.now(), kind=EventKind.BURNED)
    assert await store.consume(record.secret_id, ACCESS, now=clock.now(), events=[kept(viewed)])
    await store.record(record.secret_id, [kept(denied)])
    assert await store.burn(record.secret_id, now=clock.now())
    await store.record(record.secret_id, [kept(burned)])

    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    kinds = [event.kind for event in receipt.events]
    assert kinds.count(EventKind.OPENED) == MAX_EVENTS_PER_KIND
    assert [e for e in receipt.events if e.kind is not EventKind.OPENED] == [
        created,
        viewed,
        denied,
        burned,
    ]
    assert receipt.views_used == 1


async def test_consume_event_respects_the_cap_of_its_kind(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, views=MAX_EVENTS_PER_KIND + 2)
    await store.create(record)
    for _ in range(MAX_EVENTS_PER_KIND + 1):
        viewed = Event(at=clock.now(), kind=EventKind.VIEWED)
        assert await store.consume(record.secret_id, ACCESS, now=clock.now(), events=[kept(viewed)])

    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert len(receipt.events) == MAX_EVENTS_PER_KIND
    assert receipt.views_used == MAX_EVENTS_PER_KIND + 1


async def test_record_to_unknown_id_is_ignored(store: SecretStore, clock: FrozenClock) -> None:
    await store.record(new_secret_id(), [kept(Event(at=clock.now(), kind=EventKind.VIEWED))])


async def test_purge_expired_deletes_only_expired(store: SecretStore, clock: FrozenClock) -> None:
    short = make_record(clock, ttl=60)
    long = make_record(clock, ttl=3600)
    await store.create(short)
    await store.create(long)
    clock.advance(120)

    assert await store.purge_expired(now=clock.now(), limit=100) == 1

    assert await store.peek(long.secret_id, now=clock.now()) is not None
    receipt = await store.receipt(short.secret_id, now=clock.now())
    assert receipt is not None
    assert (receipt.end_reason, receipt.ended_at) == (EndReason.EXPIRED, short.expires_at)
    assert await store.purge_expired(now=clock.now(), limit=100) == 0


async def test_purge_expired_respects_limit(store: SecretStore, clock: FrozenClock) -> None:
    for _ in range(5):
        await store.create(make_record(clock, ttl=60))
    clock.advance(61)

    assert await store.purge_expired(now=clock.now(), limit=3) == 3
    assert await store.purge_expired(now=clock.now(), limit=3) == 2
    assert await store.purge_expired(now=clock.now(), limit=3) == 0


async def test_purge_expired_drops_receipts_past_retention(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await store.create(record)
    await store.burn(record.secret_id, now=clock.now())
    clock.advance(RETENTION.total_seconds() + 1)

    await store.purge_expired(now=clock.now(), limit=100)

    assert await store.receipt(record.secret_id, now=clock.now()) is None


@pytest.mark.parametrize(
    ("readers", "views"),
    [pytest.param(32, 1, id="32-readers-1-view"), pytest.param(40, 7, id="40-readers-7-views")],
)
async def test_consume_is_exactly_once_under_concurrency(
    store: SecretStore, clock: FrozenClock, readers: int, views: int
) -> None:
    record = make_record(clock, views=views)
    await store.create(record)
    winners: list[int] = []

    async def read() -> None:
        consumed = await store.consume(record.secret_id, ACCESS, now=clock.now())
        if consumed is not None:
            winners.append(consumed.views_left)

    async with anyio.create_task_group() as group:
        for _ in range(readers):
            group.start_soon(read)

    assert len(winners) == min(readers, views)
    assert sorted(winners) == list(range(views))
    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.views_used == views


async def test_record_failure_is_atomic_under_concurrency(
    store: SecretStore, clock: FrozenClock
) -> None:
    """Of 20 concurrent attempts not to lock, 4 of 5 count and none locks; of 20 concurrent
    attempts to lock, exactly one counts and locks."""
    record = make_record(clock, attempts=5)
    await store.create(record)
    results: list[Attempt | None] = []

    async def fail(locks: bool) -> None:
        results.append(await store.record_failure(record.secret_id, now=clock.now(), locks=locks))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(fail, False)

    counted = [r for r in results if r is not None and r.counted]
    assert sorted(r.attempts_left for r in counted) == [1, 2, 3, 4]
    assert [r for r in results if r not in counted] == [Attempt(False, 1)] * 16
    meta = await store.peek(record.secret_id, now=clock.now())
    assert meta is not None
    assert meta.attempts_left == 1

    results.clear()
    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(fail, True)

    assert results.count(Attempt(True, 0)) == 1
    assert results.count(None) == 19
    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.end_reason is EndReason.LOCKED


async def test_ping_answers(store: SecretStore) -> None:
    await store.ping()


# -- access policy, one-time codes, rate counters ------------------------------------------


async def test_create_keeps_access_policy(store: SecretStore, clock: FrozenClock) -> None:
    policy = AccessPolicy(
        allowed_ips=("203.0.113.0/24", "2001:db8::/32"),
        allowed_countries=("DE", "FR"),
        denied_countries=("KP",),
        recipient_email="bob+ops@example.com",
        recipients=("bob@example.com", "group:Site Ops", "domain:example.org"),
        require_mfa=True,
    )
    record = msgspec.structs.replace(make_record(clock), policy=policy)
    await store.create(record)

    meta = await store.peek(record.secret_id, now=clock.now())

    assert meta is not None
    assert meta.policy == policy


async def test_default_access_policy_is_empty(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)

    meta = await store.peek(record.secret_id, now=clock.now())

    assert meta is not None
    assert meta.policy.is_empty()


CODE = token_digest(b"123456")


async def put(
    store: SecretStore,
    clock: FrozenClock,
    secret_id: str,
    *,
    digest: bytes = CODE,
    tries: int = 3,
    max_codes: int = 3,
) -> CodePut:
    now = clock.now()
    return await store.put_code(
        secret_id,
        digest,
        now=now,
        expires_at=now + timedelta(minutes=10),
        tries=tries,
        resend_after=now - timedelta(seconds=60),
        max_codes=max_codes,
    )


async def put_code(
    store: SecretStore, clock: FrozenClock, secret_id: str, *, digest: bytes = CODE, tries: int = 3
) -> bool:
    """Whether a code was put (``CodePut.SENT``)."""
    return await put(store, clock, secret_id, digest=digest, tries=tries) is CodePut.SENT


async def test_code_matches_once(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)
    assert await put_code(store, clock, record.secret_id)

    first = await store.check_code(record.secret_id, CODE, now=clock.now())
    second = await store.check_code(record.secret_id, CODE, now=clock.now())

    assert first is not None
    assert first.matched
    assert second is None


async def test_wrong_codes_use_up_tries(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)
    await put_code(store, clock, record.secret_id, tries=3)
    wrong = token_digest(b"000000")

    results = [await store.check_code(record.secret_id, wrong, now=clock.now()) for _ in range(3)]

    assert [(r.matched, r.tries_left) for r in results if r is not None] == [
        (False, 2),
        (False, 1),
        (False, 0),
    ]
    assert await store.check_code(record.secret_id, CODE, now=clock.now()) is None


async def test_code_expires(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)
    await put_code(store, clock, record.secret_id)

    clock.advance(600)

    assert await store.check_code(record.secret_id, CODE, now=clock.now()) is None


async def test_put_code_refuses_a_resend_too_soon(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)
    assert await put_code(store, clock, record.secret_id)
    clock.advance(30)

    assert not await put_code(store, clock, record.secret_id, digest=token_digest(b"999999"))
    check = await store.check_code(record.secret_id, CODE, now=clock.now())
    assert check is not None
    assert check.matched


async def test_put_code_replaces_after_the_gap(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)
    await put_code(store, clock, record.secret_id)
    clock.advance(61)
    fresh = token_digest(b"999999")

    assert await put_code(store, clock, record.secret_id, digest=fresh)
    old = await store.check_code(record.secret_id, CODE, now=clock.now())
    new = await store.check_code(record.secret_id, fresh, now=clock.now())

    assert old is not None
    assert not old.matched
    assert new is not None
    assert new.matched


async def test_put_code_keeps_the_gap_after_the_tries_are_used_up(
    store: SecretStore, clock: FrozenClock
) -> None:
    """Wrong tries used to delete the code, and with it when it was put: the next code went
    out at once (4 mails in 2.3 s)."""
    record = make_record(clock)
    await store.create(record)
    assert await put(store, clock, record.secret_id, tries=2) is CodePut.SENT
    wrong = token_digest(b"000000")
    for _ in range(2):
        await store.check_code(record.secret_id, wrong, now=clock.now())
    clock.advance(5)

    assert await put(store, clock, record.secret_id) is CodePut.TOO_SOON
    clock.advance(56)
    assert await put(store, clock, record.secret_id) is CodePut.SENT


@pytest.mark.parametrize("spend", ["tries", "expiry"])
async def test_put_code_allows_max_codes_until_a_match(
    store: SecretStore, clock: FrozenClock, spend: str
) -> None:
    record = make_record(clock)
    await store.create(record)
    wrong = token_digest(b"000000")
    answers = []
    for _ in range(3):
        answers.append(await put(store, clock, record.secret_id, tries=1, max_codes=3))
        clock.advance(61)
    # The last allowed code is still live: another cannot replace it, nor is anything spent.
    answers.append(await put(store, clock, record.secret_id, tries=1, max_codes=3))
    if spend == "tries":
        check = await store.check_code(record.secret_id, wrong, now=clock.now())
        assert check is not None
        assert (check.matched, check.tries_left) == (False, 0)
    else:
        clock.advance(600)
    answers.append(await put(store, clock, record.secret_id, tries=1, max_codes=3))

    assert answers == [CodePut.SENT] * 3 + [CodePut.TOO_SOON, CodePut.SPENT]
    assert await store.check_code(record.secret_id, CODE, now=clock.now()) is None
    assert await store.peek(record.secret_id, now=clock.now()) is not None  # the caller locks


async def test_a_match_makes_room_for_new_codes(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock, views=2)
    await store.create(record)
    assert await put(store, clock, record.secret_id, max_codes=1) is CodePut.SENT
    check = await store.check_code(record.secret_id, CODE, now=clock.now())
    assert check is not None
    assert check.matched

    # The next view's code may go at once: the gap and the count end with a match.
    assert await put(store, clock, record.secret_id, max_codes=1) is CodePut.SENT


async def test_burn_as_locked_ends_the_receipt_as_locked(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await store.create(record)
    await put_code(store, clock, record.secret_id)

    assert await store.burn(record.secret_id, now=clock.now(), reason=EndReason.LOCKED)
    assert not await store.burn(record.secret_id, now=clock.now(), reason=EndReason.LOCKED)

    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert (receipt.end_reason, receipt.ended_at) == (EndReason.LOCKED, clock.now())
    assert await store.peek(record.secret_id, now=clock.now()) is None
    assert await put(store, clock, record.secret_id) is CodePut.GONE


async def test_put_code_for_a_gone_secret_is_refused(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await store.create(record)
    await store.burn(record.secret_id, now=clock.now())

    assert not await put_code(store, clock, new_secret_id())
    assert not await put_code(store, clock, record.secret_id)


async def test_code_of_a_consumed_secret_is_gone(store: SecretStore, clock: FrozenClock) -> None:
    record = make_record(clock)
    await store.create(record)
    await put_code(store, clock, record.secret_id)
    await store.consume(record.secret_id, ACCESS, now=clock.now())

    assert await store.check_code(record.secret_id, CODE, now=clock.now()) is None


async def test_check_code_is_atomic_under_concurrency(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock)
    await store.create(record)
    await put_code(store, clock, record.secret_id, tries=5)
    matches: list[bool] = []

    async def check() -> None:
        result = await store.check_code(record.secret_id, CODE, now=clock.now())
        matches.append(result is not None and result.matched)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(check)

    assert matches.count(True) == 1


async def test_hit_counts_per_bucket_and_window(store: SecretStore, clock: FrozenClock) -> None:
    clock.advance(60 - clock.now().timestamp() % 60)  # the start of a minute

    counts = [await store.hit("create:203.0.113.7", window=60, now=clock.now()) for _ in range(3)]
    other = await store.hit("create:198.51.100.1", window=60, now=clock.now())
    clock.advance(59.999)
    late = await store.hit("create:203.0.113.7", window=60, now=clock.now())
    clock.advance(0.001)
    next_window = await store.hit("create:203.0.113.7", window=60, now=clock.now())

    assert counts == [1, 2, 3]
    assert other == 1
    assert late == 4
    assert next_window == 1


async def test_hit_is_atomic_under_concurrency(store: SecretStore, clock: FrozenClock) -> None:
    counts: list[int] = []

    async def hit() -> None:
        counts.append(await store.hit("reveal:2001:db8::/64", window=3600, now=clock.now()))

    async with anyio.create_task_group() as group:
        for _ in range(30):
            group.start_soon(hit)

    assert sorted(counts) == list(range(1, 31))


async def test_hits_counts_each_bucket_in_its_own_window_in_order(
    store: SecretStore, clock: FrozenClock
) -> None:
    clock.advance(3600 - clock.now().timestamp() % 3600)  # the start of an hour
    lookup = [Hit("failed:192.0.2.8", 3600, cost=0), Hit("reveal:192.0.2.8", 60)]

    first = await store.hits(lookup, now=clock.now())
    await store.hit("failed:192.0.2.8", window=3600, now=clock.now(), cost=2)
    second = await store.hits(lookup, now=clock.now())
    clock.advance(60)  # a new minute, the same hour
    third = await store.hits([*lookup, Hit("create:192.0.2.8", 60, cost=3)], now=clock.now())

    assert first == [0, 1]
    assert second == [2, 2]
    assert third == [2, 1, 3]
    assert await store.hits([], now=clock.now()) == []


async def test_hits_is_atomic_per_counter_under_concurrency(
    store: SecretStore, clock: FrozenClock
) -> None:
    counts: list[list[int]] = []
    hits = [Hit("reveal:198.51.100.4", 3600), Hit("verify:198.51.100.4", 3600, cost=2)]

    async def hit() -> None:
        counts.append(await store.hits(hits, now=clock.now()))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(hit)

    assert sorted(reveal for reveal, _ in counts) == list(range(1, 21))
    assert sorted(verify for _, verify in counts) == list(range(2, 41, 2))


async def test_hit_with_cost_zero_reads_and_cost_adds(
    store: SecretStore, clock: FrozenClock
) -> None:
    assert await store.hit("fail:192.0.2.1", window=900, now=clock.now(), cost=0) == 0
    assert await store.hit("fail:192.0.2.1", window=900, now=clock.now(), cost=5) == 5
    assert await store.hit("fail:192.0.2.1", window=900, now=clock.now(), cost=0) == 5
    assert await store.hit("fail:192.0.2.1", window=900, now=clock.now()) == 6


async def test_clear_hits_empties_only_the_current_window_of_one_bucket(
    store: SecretStore, clock: FrozenClock
) -> None:
    clock.advance(600 - clock.now().timestamp() % 600)  # the start of a 10-minute window
    for _ in range(3):
        await store.hit("failed:192.0.2.1", window=600, now=clock.now())
    await store.hit("failed:192.0.2.1:other", window=600, now=clock.now())
    clock.advance(30)

    cleared = await store.clear_hits("failed:192.0.2.1", window=600, now=clock.now())
    again = await store.clear_hits("failed:192.0.2.1", window=600, now=clock.now())

    assert (cleared, again) == (3, 0)
    assert await store.hit("failed:192.0.2.1", window=600, now=clock.now(), cost=0) == 0
    assert await store.hit("failed:192.0.2.1:other", window=600, now=clock.now(), cost=0) == 1
    assert await store.hit("failed:192.0.2.1", window=600, now=clock.now()) == 1


async def test_reveal_without_a_view_counts_and_returns_the_metadata(
    store: SecretStore, clock: FrozenClock
) -> None:
    clock.advance(3600 - clock.now().timestamp() % 3600)  # the start of an hour
    record = make_record(clock, views=2)
    await store.create(record)
    await store.hit("failed:192.0.2.9", window=3600, now=clock.now(), cost=2)
    hits = [Hit("failed:192.0.2.9", 3600, cost=0), Hit("reveal:192.0.2.9", 60)]

    first = await store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=hits)
    second = await store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=hits)

    assert first.counts == [2, 1]
    assert second.counts == [2, 2]
    assert first.meta == second.meta == await store.peek(record.secret_id, now=clock.now())
    assert first.meta is not None
    assert first.meta.views_left == 2
    assert first.consumed is None
    assert second.consumed is None
    assert await outbox(store) == []


async def test_reveal_counts_for_an_unknown_or_expired_secret(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, ttl=60)
    await store.create(record)
    clock.advance(60)
    hits = [Hit("reveal:192.0.2.10", 3600)]
    view = viewed(clock)

    unknown = await store.reveal(new_secret_id(), ACCESS, now=clock.now(), hits=hits, view=view)
    expired = await store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=hits, view=view)
    alone = await store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=[])

    assert unknown == Reveal([1], None)
    assert expired == Reveal([2], None)
    assert alone == Reveal([], None)
    assert await outbox(store) == []


def viewed(clock: FrozenClock, *, ip: str = "192.0.2.30") -> ViewRecord:
    """A view's event as the service passes it: the store writes max_views between."""
    return ViewRecord(Event(clock.now(), EventKind.VIEWED, ip), b'{"mv":', b"}")


async def test_reveal_with_a_view_takes_it_and_keeps_the_completed_event(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, views=2)
    await store.create(record)
    hits = [Hit("failed:192.0.2.30", 600, cost=0), Hit("reveal:192.0.2.30", 60)]
    view = viewed(clock)

    first = await store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=hits, view=view)
    second = await store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=hits, view=view)
    third = await store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=hits, view=view)

    assert first.counts == [0, 1]
    assert second.counts == [0, 2]
    assert third.counts == [0, 3]
    assert first.meta is not None
    assert second.meta is not None
    assert (first.meta.views_left, second.meta.views_left) == (2, 1)  # as found, before
    assert first.consumed == Consumed(envelope=record.envelope, views_left=1)
    assert second.consumed == Consumed(envelope=record.envelope, views_left=0)
    assert third == Reveal([0, 3], None)
    assert await outbox(store) == [b'{"mv":2}', b'{"mv":2}']
    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.views_used == 2
    assert receipt.end_reason is EndReason.VIEWED
    assert [event.kind for event in receipt.events] == [EventKind.VIEWED] * 2


@pytest.mark.parametrize(
    "needs",
    [
        pytest.param({"passphrase": True}, id="passphrase"),
        pytest.param({"policy": AccessPolicy(allowed_ips=("192.0.2.0/24",))}, id="allowed-ips"),
        pytest.param({"policy": AccessPolicy(allowed_countries=("DE",))}, id="allowed-countries"),
        pytest.param({"policy": AccessPolicy(denied_countries=("FR",))}, id="denied-countries"),
        pytest.param({"policy": AccessPolicy(recipient_email="a@example.com")}, id="recipient"),
        pytest.param({"policy": AccessPolicy(recipients=("group:ops",))}, id="recipients"),
        pytest.param(
            {"policy": AccessPolicy(recipients=("a@example.com",), require_mfa=True)}, id="mfa"
        ),
        pytest.param({"digest": token_digest(b"wrong")}, id="wrong-digest"),
    ],
)
async def test_reveal_takes_nothing_from_a_secret_that_needs_more_than_its_link(
    store: SecretStore, clock: FrozenClock, needs: dict[str, object]
) -> None:
    gate = PassphraseGate(kdf="pbkdf2-sha256", iterations=600_000, salt=b"s" * 16,
                          proof_digest=MANAGE)  # fmt: skip
    record = make_record(clock, passphrase=gate if needs.get("passphrase") else None)
    policy = needs.get("policy")
    if isinstance(policy, AccessPolicy):
        record = msgspec.structs.replace(record, policy=policy)
    await store.create(record)
    digest = needs.get("digest", ACCESS)
    assert isinstance(digest, bytes)

    found = await store.reveal(
        record.secret_id, digest, now=clock.now(), hits=[], view=viewed(clock)
    )

    assert found == Reveal([], await store.peek(record.secret_id, now=clock.now()))
    assert found.meta is not None
    assert found.meta.views_left == 1
    assert await outbox(store) == []
    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.views_used == 0
    assert receipt.events == ()


async def test_reveal_takes_from_a_secret_whose_policy_only_reports(
    store: SecretStore, clock: FrozenClock
) -> None:
    policy = AccessPolicy(notify_url="https://example.com/hook", creator_country="DE")
    record = msgspec.structs.replace(make_record(clock), policy=policy)
    await store.create(record)

    found = await store.reveal(
        record.secret_id, ACCESS, now=clock.now(), hits=[], view=viewed(clock)
    )

    assert found.meta is not None
    assert found.meta.policy == policy
    assert found.consumed == Consumed(envelope=record.envelope, views_left=0)


async def test_reveal_past_a_limit_reads_and_takes_nothing_but_counts(
    store: SecretStore, clock: FrozenClock
) -> None:
    clock.advance(600 - clock.now().timestamp() % 600)  # the start of ten minutes
    record = make_record(clock, views=5)
    await store.create(record)
    await store.hit("failed:192.0.2.31", window=600, now=clock.now(), cost=3)
    reveal = Hit("reveal:192.0.2.31", 600, limit=1)
    failed = Hit("failed:192.0.2.31", 600, cost=0, limit=2)  # a read refuses at its limit

    over_failures = await store.reveal(
        record.secret_id, ACCESS, now=clock.now(), hits=[failed, reveal], view=viewed(clock)
    )
    over_rate = await store.reveal(
        record.secret_id, ACCESS, now=clock.now(), hits=[reveal], view=viewed(clock)
    )
    peeked = await store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=[reveal])

    assert over_failures == Reveal([3, 1], None)
    assert over_rate == Reveal([2], None)
    assert peeked == Reveal([3], None)
    meta = await store.peek(record.secret_id, now=clock.now())
    assert meta is not None
    assert meta.views_left == 5
    assert await outbox(store) == []


async def test_reveal_counts_a_counter_hit_twice_one_hit_after_the_other(
    store: SecretStore, clock: FrozenClock
) -> None:
    clock.advance(60 - clock.now().timestamp() % 60)  # the start of a minute
    record = make_record(clock, views=5)
    await store.create(record)
    bucket = "reveal:192.0.2.32"
    hits = [Hit(bucket, 60), Hit(bucket, 60, cost=0), Hit(bucket, 60, cost=2)]

    revealed = await store.reveal(record.secret_id, ACCESS, now=clock.now(), hits=hits)

    assert revealed.counts == [1, 1, 3]
    assert await store.hit(bucket, window=60, now=clock.now(), cost=0) == 3


async def test_reveal_is_exactly_once_under_concurrency_with_consume(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, views=3)
    await store.create(record)
    taken: list[bool] = []

    async def by_reveal() -> None:
        found = await store.reveal(
            record.secret_id,
            ACCESS,
            now=clock.now(),
            hits=[Hit("reveal:198.51.100.9", 3600)],
            view=viewed(clock),
        )
        taken.append(found.consumed is not None)

    async def by_consume() -> None:
        consumed = await store.consume(
            record.secret_id, ACCESS, now=clock.now(), events=[kept(None, b'{"mv":3}')]
        )
        taken.append(consumed is not None)

    async with anyio.create_task_group() as group:
        for i in range(20):
            group.start_soon(by_reveal if i % 4 else by_consume)

    assert taken.count(True) == 3
    assert await outbox(store) == [b'{"mv":3}'] * 3
    assert await store.hit("reveal:198.51.100.9", window=3600, now=clock.now(), cost=0) == 15


# -- the outbox (``audit.outbox``): events kept with the change they describe -----------------


async def outbox(store: SecretStore) -> list[bytes]:
    return [p.outbox for p in await store.pending_events(limit=1000)]


async def test_every_change_keeps_its_events_in_the_outbox_and_a_refused_one_none(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, views=2, attempts=2)
    now = clock.now()
    await store.create(record, events=[kept(None, b"created")])
    with pytest.raises(DuplicateId):
        await store.create(record, events=[kept(None, b"taken")])
    assert await store.consume(record.secret_id, token_digest(b"no"), now=now,
                               events=[kept(None, b"refused")]) is None  # fmt: skip
    assert await store.consume(record.secret_id, ACCESS, now=now, events=[kept(None, b"viewed")])
    await store.record(None, [kept(None, b"alert")])
    await store.record(new_secret_id(), [kept(None, b"unknown")])
    assert await store.record_failure(
        record.secret_id, now=now, locks=True, events=[kept(None, b"not counted")]
    ) == Attempt(counted=False, attempts_left=2)
    assert await store.record_failure(
        record.secret_id, now=now, locks=False, events=[kept(None, b"failed")]
    ) == Attempt(counted=True, attempts_left=1)
    assert await store.burn(record.secret_id, now=now, events=[kept(None, b"burned")])
    assert not await store.burn(record.secret_id, now=now, events=[kept(None, b"again")])

    assert await outbox(store) == [
        b"created",
        b"viewed",
        b"alert",
        b"unknown",
        b"failed",
        b"burned",
    ]


async def test_outbox_records_stay_until_acknowledged_oldest_first(
    store: SecretStore, clock: FrozenClock
) -> None:
    await store.record(None, [kept(None, b"%d" % i) for i in range(5)])

    first = await store.pending_events(limit=2)
    assert [p.outbox for p in first] == [b"0", b"1"]
    assert [p.outbox for p in await store.pending_events(limit=2)] == [b"0", b"1"]  # reads only

    await store.ack_events([p.ref for p in first])
    await store.ack_events([p.ref for p in first])  # twice: no error

    assert await outbox(store) == [b"2", b"3", b"4"]


async def test_outbox_bytes_come_back_exactly(store: SecretStore, clock: FrozenClock) -> None:
    raw = bytes(range(256)) + "ü\u2028{}\"'".encode()
    await store.record(None, [kept(None, raw)])

    assert await outbox(store) == [raw]


async def test_a_locking_attempt_keeps_all_its_events(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, attempts=1)
    await store.create(record)
    failed = Event(at=clock.now(), kind=EventKind.WRONG_PASSPHRASE, ip="198.51.100.1")
    locked = Event(at=clock.now(), kind=EventKind.LOCKED, ip="198.51.100.1")

    attempt = await store.record_failure(
        record.secret_id,
        now=clock.now(),
        locks=True,
        events=[kept(failed, b"failed"), kept(locked, b"locked")],
    )

    assert attempt == Attempt(counted=True, attempts_left=0)
    assert await outbox(store) == [b"failed", b"locked"]
    receipt = await store.receipt(record.secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.events == (failed, locked)
    assert receipt.end_reason is EndReason.LOCKED


async def test_exactly_one_event_per_view_taken_under_concurrency(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_record(clock, views=3)
    await store.create(record)
    taken: list[bool] = []

    async def attempt() -> None:
        consumed = await store.consume(
            record.secret_id, ACCESS, now=clock.now(), events=[kept(None, b"viewed")]
        )
        taken.append(consumed is not None)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(attempt)

    assert taken.count(True) == 3
    assert await outbox(store) == [b"viewed"] * 3


@pytest.mark.parametrize(
    "policy",
    [
        AccessPolicy(),
        AccessPolicy(notify_url="https://example.com/h", creator_country="DE"),
        AccessPolicy(allowed_ips=("10.0.0.0/8",)),
        AccessPolicy(allowed_countries=("DE",)),
        AccessPolicy(denied_countries=("FR",), creator_country="FR"),
        AccessPolicy(recipient_email="null@example.com"),
        AccessPolicy(recipients=("domain:example.com",)),
        AccessPolicy(recipients=("a@example.com",), require_mfa=True, creator_country="DE"),
    ],
)
def test_a_policy_starts_with_the_no_rules_prefix_exactly_when_it_has_no_rules(
    policy: AccessPolicy,
) -> None:
    assert policy.to_bytes().startswith(NO_RULES_PREFIX) is policy.is_empty()
