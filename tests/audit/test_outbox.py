"""``OutboxRecord``'s stored form: the same JSON document as earlier versions wrote (so a
rolling upgrade seals every record both ways), with a fixed prefix that names a record
without decoding it and the event in its canonical form; what is chained is always the
canonical form of a validated event."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest

from burnlink.audit.events import AuditEvent, parse_time
from burnlink.audit.outbox import OutboxRecord, WrittenRecords, peek_id
from burnlink.audit.watch import Watched
from tests.audit.conftest import T0, make_event

ID = "0123456789abcdef0123456789abcdef"
WATCH = Watched("secret-0000", T0 + timedelta(hours=1), "https://hooks.example/é")


def record(**changes: Any) -> OutboxRecord:
    fields: dict[str, Any] = {"event": make_event(7), "id": ID, "watch": WATCH, "unwatch": None}
    fields.update(changes)
    return OutboxRecord(**fields)


def earlier_layout(item: OutboxRecord) -> bytes:
    """What burnlink wrote before (its ``to_bytes``, verbatim)."""
    watch = None
    if item.watch is not None:
        expires = item.watch.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        watch = {
            "id": item.watch.secret_id,
            "expires_at": expires,
            "notify_url": item.watch.notify_url,
        }
    document = {
        "id": item.id,
        "event": item.event.to_dict(),
        "watch": watch,
        "unwatch": item.unwatch,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def earlier_reader(data: bytes) -> OutboxRecord:
    """How burnlink read records before (its ``from_bytes``, verbatim but for errors)."""
    document = json.loads(data)
    watch = document["watch"]
    return OutboxRecord(
        event=AuditEvent.from_dict(document["event"]),
        id=document["id"],
        watch=None
        if watch is None
        else Watched(str(watch["id"]), parse_time(str(watch["expires_at"])), watch["notify_url"]),
        unwatch=None if document["unwatch"] is None else str(document["unwatch"]),
    )


@pytest.mark.parametrize("changes", [{}, {"watch": None, "unwatch": "secret-0001"}])
def test_the_stored_form_is_the_earlier_versions_both_ways(changes: dict[str, Any]) -> None:
    """A rolling upgrade: records of either version are sealed by the other. Only the order
    of the event's members changed (now canonical, sorted)."""
    item = record(**changes)
    data = item.to_bytes()

    assert json.loads(data) == json.loads(earlier_layout(item))
    assert data != earlier_layout(item)
    assert OutboxRecord.from_bytes(earlier_layout(item)) == item
    assert earlier_reader(data) == item


@pytest.mark.parametrize("known", [False, True])
def test_the_stored_event_is_its_canonical_form_kept_with_the_record(known: bool) -> None:
    """The writer's canonical bytes are what the record stores and what its sealer chains."""
    event = make_event(7)
    item = record(canonical=event.canonical() if known else None)
    data = item.to_bytes()
    document_end = len(data) - len(b',"watch":') - len(data.rpartition(b',"watch":')[2])

    assert data[len(b'{"id":"' + ID.encode() + b'","event":') : document_end] == event.canonical()
    assert item.event_bytes() == event.canonical()
    assert (item.canonical is not None) is known


def test_a_record_is_named_by_its_first_bytes_and_read_with_its_canonical_event() -> None:
    data = record().to_bytes()

    assert data.startswith(b'{"id":"' + ID.encode() + b'","event":{')
    assert peek_id(data) == ID
    back = OutboxRecord.from_bytes(data)
    assert back == record()
    assert back.event_bytes() == make_event(7).canonical()
    assert record().event_bytes() == make_event(7).canonical()


def test_a_record_without_the_fixed_prefix_is_named_only_by_decoding_it() -> None:
    data = json.dumps(json.loads(record().to_bytes()), indent=1).encode()

    assert peek_id(data) is None
    assert OutboxRecord.from_bytes(data) == record()
    assert peek_id(b'{"id":"0123456789ABCDEF0123456789abcdef","event":{}}') is None
    assert peek_id(b'{"id":"0123456789abcdef0123456789abcde","event":{}}') is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"v":1', '"v":1.0'),
        ('"v":1', '"v":true'),
        ('"v":1', '"v": 1'),
        ('"detail":{"n":7}', '"detail":{"n":7 }'),
        ('"country":"DE"', '"country":"\\u0044E"'),
        ('"at":"2030-', '"at":"0999-'),
    ],
)
def test_what_is_chained_is_the_event_canonical_form_never_the_bytes_read(
    old: str, new: str
) -> None:
    """A damaged or altered store may hold a valid event in other bytes."""
    data = record().to_bytes().decode()
    assert old in data
    altered = data.replace(old, new, 1).encode()

    try:
        back = OutboxRecord.from_bytes(altered)
    except ValueError:
        return
    assert back.event_bytes() == back.event.canonical()


def test_damaged_records_either_fail_or_chain_exactly_their_event_canonical_bytes() -> None:
    """Thousands of one-character changes: none gets bytes into the chain that are not the
    canonical form of a valid event."""
    data = record().to_bytes()
    alphabet = b'0123456789abcdefDEvZ.:,{}[]"\\ -_tnul'
    rng = random.Random(13)  # noqa: S311 - reproducible damage, not secrets
    for _ in range(3000):
        position = rng.randrange(len(data))
        damaged = bytearray(data)
        action = rng.randrange(3)
        if action == 0:
            damaged[position] = rng.choice(alphabet)
        elif action == 1:
            damaged.insert(position, rng.choice(alphabet))
        else:
            del damaged[position]
        try:
            back = OutboxRecord.from_bytes(bytes(damaged))
        except ValueError:
            continue
        assert back.event_bytes() == back.event.canonical()
        assert back.event == AuditEvent.from_json(back.event_bytes())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"[]",
        b'{"id":"0123456789abcdef0123456789abcdef","event":',
        b'{"id":"0123456789abcdef0123456789abcdef","event":{}}',
        b'{"id":"0123456789abcdef0123456789abcdef","event":' + b"[" * 100_000,
    ],
)
def test_bytes_that_are_not_a_record_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"outbox record|audit event"):
        OutboxRecord.from_bytes(data)


def test_a_written_record_is_taken_once_and_only_with_the_bytes_it_was_stored_as() -> None:
    written = WrittenRecords()
    kept = record()
    data = kept.to_bytes()
    written.keep(kept, data)

    assert written.take(ID, data.replace(b"secret-0000", b"secret-0001")) is None
    assert written.take(ID, data) is None  # a mismatch forgets it: the bytes are decoded

    written.keep(kept, data)
    assert written.take(ID, data) is kept
    assert written.take(ID, data) is None
    assert len(written) == 0


def test_written_records_forget_the_oldest_past_their_limit() -> None:
    written = WrittenRecords(limit=3)
    kept = [record(id=f"{n:032x}") for n in range(5)]
    for item in kept:
        written.keep(item, item.to_bytes())

    assert len(written) == 3
    assert [written.take(item.id, item.to_bytes()) for item in kept] == [None, None, *kept[2:]]


def _view_parts() -> tuple[OutboxRecord, bytes, bytes, bytes]:
    """A view's record as the service builds it (``max_views`` 0, its canonical event kept),
    its bytes, and the parts around the count a store writes (``store.ViewRecord``)."""
    event = make_event(7).with_detail({"max_views": 0})
    viewed = record(event=event, watch=None, canonical=event.canonical())
    data = viewed.to_bytes()
    head, _, tail = data.rpartition(b'"detail":{"max_views":0}')
    return viewed, data, head + b'"detail":{"max_views":', b"}" + tail


@pytest.mark.parametrize("count", [b"0", b"1", b"17", b"999999999"])
def test_a_written_view_is_taken_with_the_count_the_store_wrote(count: bytes) -> None:
    viewed, data, head, tail = _view_parts()
    written = WrittenRecords()
    written.keep(viewed, data)
    written.expect_views(data, head, tail)

    stored = head + count + tail
    taken = written.take(ID, stored)

    assert taken == OutboxRecord.from_bytes(stored)
    assert taken is not None
    assert taken.event.canonical() == OutboxRecord.from_bytes(stored).event_bytes()
    assert taken.canonical == taken.event.canonical()  # spliced, not written again


@pytest.mark.parametrize("count", [b"", b"07", b"-1", b"1.0", b"1e3", b" 1", b"\xd9\xa1"])
def test_a_written_view_with_another_count_is_left_to_the_decoder(count: bytes) -> None:
    viewed, data, head, tail = _view_parts()
    written = WrittenRecords()
    written.keep(viewed, data)
    written.expect_views(data, head, tail)

    assert written.take(ID, head + count + tail) is None
    assert len(written) == 0


def test_only_a_view_kept_as_written_and_cut_around_its_count_expects_one() -> None:
    viewed, data, head, tail = _view_parts()
    other = record()  # its detail is {"n": 7}
    written = WrittenRecords()
    written.keep(other, other.to_bytes())
    written.expect_views(data, head, tail)  # not the bytes kept under that id
    assert written.take(ID, head + b"3" + tail) is None

    written.keep(viewed, data)
    assert b"203.0.113.7" in head
    altered = head.replace(b"203.0.113.7", b"203.0.113.8")  # parts of some other record
    written.expect_views(data, altered, tail)
    assert written.take(ID, altered + b"3" + tail) is None
