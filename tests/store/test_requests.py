"""The requests part of the storage contract (``burnlink.store.requests``), on every backend
through ``store``: exactly one answer, atomically with the answer's secret and the events."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import anyio
import msgspec
import pytest

from burnlink.clock import FrozenClock
from burnlink.errors import DuplicateId
from burnlink.ids import new_secret_id, token_digest
from burnlink.models import Event, EventKind, SecretRecord
from burnlink.request_crypto import KeyPair
from burnlink.store import SecretStore
from burnlink.store.requests import Answer, RequestRecord, RequestState
from burnlink.store.secrets import Recorded
from tests.conftest import RETENTION

pytestmark = pytest.mark.anyio

REQUESTER = token_digest(b"requester token")
LINK = token_digest(b"request link token")
PUBLIC = KeyPair.generate().public


def make_request(clock: FrozenClock, *, ttl: float = 3600, **changes: object) -> RequestRecord:
    now = clock.now()
    record = RequestRecord(
        request_id=new_secret_id(),
        requester_digest=REQUESTER,
        answer_digest=LINK,
        public_key=PUBLIC,
        description="staging database password ✓",
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
        answer_ttl=600,
        answer_views=2,
        recipients=("group:ops", "ann@example.com"),
        notify_url="https://hooks.example.com/x?token=abc",
        notify_email="req@example.com",
        owner="subject-1",
        owner_email="req@example.com",
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def answer_of(
    request: RequestRecord, clock: FrozenClock, envelope: bytes = b"sealed"
) -> SecretRecord:
    now = clock.now()
    return SecretRecord(
        secret_id=request.request_id,
        envelope=envelope,
        access_digest=REQUESTER,
        manage_digest=token_digest(b"manage"),
        created_at=now,
        expires_at=now + timedelta(seconds=request.answer_ttl),
        max_views=request.answer_views,
        max_attempts=5,
    )


def event(name: bytes, line: Event | None = None) -> Recorded:
    return Recorded(line, name)


async def outbox(store: SecretStore) -> list[bytes]:
    return [p.outbox for p in await store.pending_events(limit=100)]


async def test_create_then_get_keeps_every_field(store: SecretStore, clock: FrozenClock) -> None:
    record = make_request(clock)
    await store.create_request(record, events=[event(b"request.created")])

    found = await store.get_request(record.request_id, now=clock.now())

    assert found is not None
    assert found.record == record
    assert found.state is RequestState.OPEN
    assert found.answered_at is None
    assert await outbox(store) == [b"request.created"]


async def test_optional_fields_stay_absent(store: SecretStore, clock: FrozenClock) -> None:
    record = make_request(
        clock, recipients=(), notify_url=None, notify_email=None, owner=None, owner_email=None
    )
    await store.create_request(record, events=[])

    found = await store.get_request(record.request_id, now=clock.now())

    assert found is not None
    assert found.record == record


async def test_create_refuses_a_taken_id(store: SecretStore, clock: FrozenClock) -> None:
    record = make_request(clock)
    await store.create_request(record, events=[])

    with pytest.raises(DuplicateId):
        await store.create_request(
            dataclasses.replace(record, description="other"), events=[event(b"second")]
        )

    found = await store.get_request(record.request_id, now=clock.now())
    assert found is not None
    assert found.record.description == record.description
    assert await outbox(store) == []


async def test_unknown_request_is_none(store: SecretStore, clock: FrozenClock) -> None:
    assert await store.get_request(new_secret_id(), now=clock.now()) is None
    answer = answer_of(make_request(clock), clock)
    assert await store.answer_request(answer, now=clock.now(), events=[]) is Answer.GONE
    assert await store.peek(answer.secret_id, now=clock.now()) is None


async def test_answer_creates_the_secret_and_closes_the_request_with_events(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_request(clock)
    await store.create_request(record, events=[])
    clock.advance(5)
    answer = answer_of(record, clock)
    line = Event(clock.now(), EventKind.CREATED)

    done = await store.answer_request(
        answer, now=clock.now(), events=[event(b"secret.created", line), event(b"answered")]
    )

    assert done is Answer.ANSWERED
    found = await store.get_request(record.request_id, now=clock.now())
    assert found is not None
    assert found.state is RequestState.ANSWERED
    assert found.answered_at == clock.now()
    meta = await store.peek(record.request_id, now=clock.now())
    assert meta is not None
    assert (meta.max_views, meta.views_left) == (2, 2)
    receipt = await store.receipt(record.request_id, now=clock.now())
    assert receipt is not None
    assert [e.kind for e in receipt.events] == [EventKind.CREATED]
    assert await outbox(store) == [b"secret.created", b"answered"]
    consumed = await store.consume(record.request_id, REQUESTER, now=clock.now())
    assert consumed is not None
    assert consumed.envelope == b"sealed"


async def test_a_second_answer_changes_nothing(store: SecretStore, clock: FrozenClock) -> None:
    record = make_request(clock)
    await store.create_request(record, events=[])
    first = answer_of(record, clock, b"first")
    assert await store.answer_request(first, now=clock.now(), events=[]) is Answer.ANSWERED

    second = answer_of(record, clock, b"second")
    done = await store.answer_request(second, now=clock.now(), events=[event(b"x")])

    assert done is Answer.TAKEN
    assert await outbox(store) == []
    consumed = await store.consume(record.request_id, REQUESTER, now=clock.now())
    assert consumed is not None
    assert consumed.envelope == b"first"


async def test_an_answer_after_expiry_changes_nothing(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_request(clock, ttl=60)
    await store.create_request(record, events=[])
    clock.advance(60)

    done = await store.answer_request(
        answer_of(record, clock), now=clock.now(), events=[event(b"x")]
    )

    assert done is Answer.EXPIRED
    assert await store.peek(record.request_id, now=clock.now()) is None
    assert await store.receipt(record.request_id, now=clock.now()) is None
    assert await outbox(store) == []
    found = await store.get_request(record.request_id, now=clock.now())
    assert found is not None
    assert found.state is RequestState.EXPIRED


@pytest.mark.parametrize("answerers", [2, 24])
async def test_answer_is_exactly_once_under_concurrency(
    store: SecretStore, clock: FrozenClock, answerers: int
) -> None:
    record = make_request(clock)
    await store.create_request(record, events=[])
    results: list[tuple[Answer, bytes]] = []

    async def answer(n: int) -> None:
        body = b"answer %d" % n
        secret = answer_of(record, clock, body)
        done = await store.answer_request(secret, now=clock.now(), events=[event(body)])
        results.append((done, body))

    async with anyio.create_task_group() as group:
        for n in range(answerers):
            group.start_soon(answer, n)

    winners = [body for done, body in results if done is Answer.ANSWERED]
    assert len(winners) == 1
    assert sorted(done for done, _ in results if done is not Answer.ANSWERED) == [Answer.TAKEN] * (
        answerers - 1
    )
    assert await outbox(store) == winners
    consumed = await store.consume(record.request_id, REQUESTER, now=clock.now())
    assert consumed is not None
    assert consumed.envelope == winners[0]


async def test_expiry_is_swept_once_with_its_event(store: SecretStore, clock: FrozenClock) -> None:
    soon = make_request(clock, ttl=60)
    later = make_request(clock, ttl=600)
    answered = make_request(clock, ttl=60)
    for record in (soon, later, answered):
        await store.create_request(record, events=[])
    await store.answer_request(answer_of(answered, clock), now=clock.now(), events=[])
    assert await store.expire_request(soon.request_id, now=clock.now(), events=[]) is False
    clock.advance(60)

    due = await store.due_requests(now=clock.now(), limit=10)

    assert soon.request_id in due
    assert later.request_id not in due
    assert await store.expire_request(soon.request_id, now=clock.now(), events=[event(b"expired")])
    assert not await store.expire_request(
        soon.request_id, now=clock.now(), events=[event(b"again")]
    )
    assert not await store.expire_request(
        answered.request_id, now=clock.now(), events=[event(b"answered one")]
    )
    assert await outbox(store) == [b"expired"]
    assert await store.due_requests(now=clock.now(), limit=10) == []
    found = await store.get_request(soon.request_id, now=clock.now())
    assert found is not None
    assert found.state is RequestState.EXPIRED
    gone = await store.get_request(answered.request_id, now=clock.now())
    assert gone is not None
    assert gone.state is RequestState.ANSWERED


async def test_requests_are_kept_for_the_retention_then_purged(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_request(clock, ttl=60)
    await store.create_request(record, events=[])
    clock.advance(60 + RETENTION.total_seconds() - 1)
    assert await store.get_request(record.request_id, now=clock.now()) is not None

    clock.advance(1)

    assert await store.get_request(record.request_id, now=clock.now()) is None
    assert await store.purge_requests(now=clock.now(), limit=10) in (0, 1)
    assert await store.get_request(record.request_id, now=clock.now()) is None


async def test_an_answered_request_is_kept_as_long_as_its_answer(
    store: SecretStore, clock: FrozenClock
) -> None:
    record = make_request(clock, ttl=60)
    await store.create_request(record, events=[])
    answer = msgspec.structs.replace(
        answer_of(record, clock), expires_at=clock.now() + timedelta(seconds=3600)
    )
    await store.answer_request(answer, now=clock.now(), events=[])

    clock.advance(3600 + RETENTION.total_seconds() - 1)

    found = await store.get_request(record.request_id, now=clock.now())
    assert found is not None
    assert found.state is RequestState.ANSWERED
