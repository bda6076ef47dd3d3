"""``OutboxRecord.from_bytes``'s msgspec reader against the reader it replaced.

The earlier reader (``json`` and ``AuditEvent.from_dict``) is copied here verbatim: for every
input, valid, re-spaced, damaged or with one value swapped, both must accept it with the same
record (every field's type too) or refuse it with the same ``ValueError``; and what is
accepted must chain exactly ``event.canonical()``, whether or not the reader kept it.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from burnlink.audit.events import (
    MAX_EMAIL,
    MAX_ITEMS,
    MAX_REQUEST_ID,
    MAX_SUBJECT,
    MAX_VALUE_LENGTH,
    AuditEvent,
    AuditEventType,
    Outcome,
    format_time,
    parse_time,
)
from burnlink.audit.outbox import OutboxRecord, _utc_time, peek_id
from burnlink.audit.watch import Watched
from burnlink.useragents import MAX_USER_AGENT
from tests.audit.test_outbox import ID, record

_DECODE = json.JSONDecoder().decode


def json_reader(data: bytes) -> OutboxRecord:
    """``from_bytes`` before msgspec, verbatim."""
    try:
        document = _DECODE(str(data, "utf-8"))
        event = AuditEvent.from_dict(document["event"])
        watch = document["watch"]
        return OutboxRecord(
            event=event,
            id=_checked_id(document["id"]),
            watch=None
            if watch is None
            else Watched(
                str(watch["id"]), parse_time(str(watch["expires_at"])), watch["notify_url"]
            ),
            unwatch=None if document["unwatch"] is None else str(document["unwatch"]),
        )
    except (
        KeyError,
        TypeError,
        IndexError,
        RecursionError,
        json.JSONDecodeError,
        UnicodeDecodeError,
    ) as exc:
        raise ValueError(f"not an outbox record: {type(exc).__name__}") from None


def _checked_id(value: object) -> str:
    if not isinstance(value, str) or len(value) != 32:
        raise ValueError("outbox record id must be 32 hex digits")
    int(value, 16)
    return value


def typed(value: object) -> object:
    """``value`` with the type of everything in it: ``True == 1``, but not as a label."""
    if isinstance(value, Mapping):
        return (type(value), [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, datetime):
        return (datetime, value, value.tzinfo)
    return (type(value), value)


def shape(item: OutboxRecord) -> object:
    """Everything a record holds, typed, and the bytes it chains and stores."""
    event = tuple(typed(getattr(item.event, f.name)) for f in fields(AuditEvent))
    watch = (
        None
        if item.watch is None
        else tuple(typed(getattr(item.watch, name)) for name in Watched.__struct_fields__)
    )
    return (event, typed(item.id), watch, typed(item.unwatch), attempt(item.to_bytes))


def attempt(make: Callable[[], bytes]) -> object:
    """``make()``, or the error it raised: an odd record read by the earlier reader (a
    ``notify_url`` list, a lone surrogate) may have no bytes."""
    try:
        return make()
    except (TypeError, UnicodeEncodeError) as exc:
        return repr(exc)


def verdict(read: Any, data: bytes) -> tuple[str, object]:
    try:
        return "read", shape(read(data))
    except ValueError as exc:
        return "refused", str(exc)


def assert_same_verdict(data: bytes) -> OutboxRecord | None:
    """Both readers agree on ``data``; the record (``None`` if refused)."""
    assert verdict(OutboxRecord.from_bytes, data) == verdict(json_reader, data)
    try:
        item = OutboxRecord.from_bytes(data)
    except ValueError:
        return None
    assert attempt(item.event_bytes) == attempt(item.event.canonical)
    assert item == json_reader(data)
    return item


def kept_bytes(item: OutboxRecord) -> bytes | None:
    """What the fast reader kept (``None`` when the earlier reader read it)."""
    return item.canonical


# --- strategies ------------------------------------------------------------------------

_HEX = "0123456789abcdef"
_KEYS = st.sampled_from(
    ["n", "ttl", "views_left", "rule", "allowed", "reason", "by", "a.b", "x_1", "mfa", "q" * 40]
)
_LABEL_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=MAX_VALUE_LENGTH),
)
_LABELS = st.dictionaries(_KEYS, _LABEL_VALUES, max_size=MAX_ITEMS)
_TIMES = st.datetimes().map(  # naive, years 1 to 9999: made UTC, to the millisecond
    lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000, tzinfo=UTC)
)
_IPS = st.one_of(
    st.ip_addresses().map(str), st.sampled_from(["::FFFF:1.2.3.4", "0:0::1", "fe80::1%eth0"])
)


@st.composite
def events(draw: st.DrawFn) -> AuditEvent:
    actor = draw(
        st.none()
        | st.tuples(st.text(max_size=MAX_SUBJECT), st.none() | st.text(max_size=MAX_EMAIL))
    )
    return AuditEvent(
        at=draw(_TIMES),
        type=draw(st.sampled_from(AuditEventType)),
        outcome=draw(st.sampled_from(Outcome)),
        secret_hash=draw(st.none() | st.text(_HEX, min_size=64, max_size=64)),
        client_ip=draw(st.none() | _IPS),
        country=draw(st.none() | st.text(string.ascii_uppercase, min_size=2, max_size=2)),
        user_agent=draw(st.none() | st.text(max_size=MAX_USER_AGENT)),
        agent_class=draw(st.none() | st.text(max_size=20)),
        request_id=draw(st.none() | st.text(max_size=MAX_REQUEST_ID)),
        policy=draw(_LABELS),
        detail=draw(_LABELS),
        actor_subject=None if actor is None else actor[0],
        actor_email=None if actor is None else actor[1],
    )


@st.composite
def records(draw: st.DrawFn) -> OutboxRecord:
    watch = draw(st.none() | st.tuples(st.text(), _TIMES, st.none() | st.text()))
    return OutboxRecord(
        event=draw(events()),
        id=draw(st.text(_HEX, min_size=32, max_size=32)),
        watch=None if watch is None else Watched(*watch),
        unwatch=draw(st.none() | st.text()),
    )


_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- valid records -----------------------------------------------------------------------


@_SETTINGS
@given(records())
def test_every_record_written_is_read_by_the_fast_reader_as_the_earlier_one_reads_it(
    item: OutboxRecord,
) -> None:
    data = item.to_bytes()

    back = assert_same_verdict(data)

    assert back is not None
    assert shape(back) == shape(item)
    assert kept_bytes(back) == item.event.canonical()  # read fast, its bytes kept
    assert back.event_bytes() == item.event.canonical()


@_SETTINGS
@given(records(), st.randoms(use_true_random=False), st.booleans(), st.sampled_from([None, 1]))
def test_a_record_in_other_spacing_order_or_escaping_is_read_alike(
    item: OutboxRecord, rng: Any, ascii_only: bool, indent: int | None
) -> None:
    def shuffled(value: object) -> object:
        if isinstance(value, dict):
            keys = list(value)
            rng.shuffle(keys)
            return {k: shuffled(value[k]) for k in keys}
        return value

    document = shuffled(json.loads(item.to_bytes()))
    data = json.dumps(document, ensure_ascii=ascii_only, indent=indent).encode()

    back = assert_same_verdict(data)

    assert back is not None
    assert shape(back) == shape(item)
    assert back.event_bytes() == item.event.canonical()


# --- damaged bytes -----------------------------------------------------------------------

_DAMAGE = st.sampled_from(
    [bytes([b]) for b in b'0123456789abcdefABCDEFTZ.:,-+eE{}[]"\\/ \t\n\x00\x1f\x7fnultrusfa']
    + [b"\xc3\xa9", b"\xff", b"\xed\xa0\x80", b"\\u0000", b"\\ud800", b"\\u00e9", b"1.0", b"24"]
    + [b"NaN", b"true", b"null", b"[]", b"{}", b'""', b"\xef\xbb\xbf", b"\xe2\x80\xa8"]
)


@_SETTINGS
@given(
    records(), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), _DAMAGE), max_size=3)
)
def test_damaged_bytes_get_the_earlier_readers_verdict(
    item: OutboxRecord, damage: list[tuple[int, int, bytes]]
) -> None:
    data = bytearray(item.to_bytes())
    for position, action, piece in damage:
        at = position % (len(data) + 1)
        if action == 0:
            data[at:at] = piece
        elif action == 1:
            data[at : at + len(piece)] = piece
        else:
            del data[at : at + len(piece)]

    assert_same_verdict(bytes(data))


# --- one value swapped ---------------------------------------------------------------------

_ODD_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    1.5,
    2**64,
    "",
    " ",
    "x",
    "secret.viewed",
    "ok",
    "DE",
    "de",
    "D",
    "203.0.113.7",
    "::FFFF:1.2.3.4",
    "not an ip",
    "e" * 64,
    "E" * 64,
    "e" * 63,
    "e" * 64 + "\n",
    "0123456789ABCDEF0123456789abcdef",
    "0x23456789abcdef0123456789abcdef",
    "0123456789abcdef_123456789abcdef",
    " 123456789abcdef0123456789abcdef",
    "2030-01-01T00:00:00.000Z",
    "2030-01-01T24:00:00.000Z",
    "2030-01-01T23:59:60.000Z",
    "2030-02-30T00:00:00.000Z",
    "0000-01-01T00:00:00.000Z",
    "2030-01-01T00:00:00.000Z\n",
    "2030-01-01T00:00:00Z",
    "2030-01-01T00:00:00.000+00:00",
    "2030-01-01t00:00:00.000z",
    "\u0662\u0660\u0663\u0660-01-01T00:00:00.000Z",
    "x" * (MAX_USER_AGENT + 1),
    "x" * 21,
    "x" * (MAX_REQUEST_ID + 1),
    "x" * (MAX_SUBJECT + 1),
    [],
    ["x"],
    {},
    {"n": 1},
    {"n": 1.0},
    {"n": [1]},
    {"N": 1},
    {"token": "x"},
    {"a.key": 1},
    {"n": "x" * (MAX_VALUE_LENGTH + 1)},
    {f"k{i}": i for i in range(MAX_ITEMS + 1)},
    {"email": None, "subject": None},
    {"email": None, "subject": "sub"},
    {"email": "a@b", "subject": None},
    {"email": 1, "subject": "sub"},
    {"subject": "sub"},
    {"email": None, "subject": "sub", "x": 1},
    {"id": "s", "expires_at": "2030-01-01T00:00:00.000Z", "notify_url": None},
    {"id": 5, "expires_at": "2030-01-01T00:00:00.000Z", "notify_url": ["x"]},
    {"id": "s", "expires_at": "2030-01-01T00:00:00.000Z", "notify_url": None, "x": 1},
    {"id": "s", "expires_at": "2030-01-01T24:00:00.000Z", "notify_url": None},
    {"id": "s", "notify_url": None},
]
_EVENT_MEMBERS = [
    *AuditEvent(at=datetime.now(UTC), type=AuditEventType.ALERT, outcome=Outcome.OK).to_dict(),
    "actor",
]
_PLACES = [("event", name) for name in _EVENT_MEMBERS] + [
    (name,) for name in ("id", "watch", "unwatch", "event", "extra")
]


class _Missing:
    """The member left out (a stable name for the test's id, unlike ``object()``)."""

    def __repr__(self) -> str:
        return "missing"


_MISSING = _Missing()


@pytest.mark.parametrize("place", _PLACES, ids=lambda p: ".".join(p))
@pytest.mark.parametrize("value", [*_ODD_VALUES, _MISSING], ids=repr)
def test_any_member_swapped_for_an_odd_value_gets_the_earlier_readers_verdict(
    place: tuple[str, ...], value: object
) -> None:
    document = json.loads(record(unwatch="secret-0001").to_bytes())
    parent = document
    for name in place[:-1]:
        parent = parent[name]
    if value is _MISSING:
        parent.pop(place[-1], None)
    else:
        parent[place[-1]] = value

    assert_same_verdict(json.dumps(document, ensure_ascii=False).encode())


# --- named cases ---------------------------------------------------------------------------

_BASE = record().to_bytes()


def _edit(old: bytes, new: bytes) -> bytes:
    assert old in _BASE
    return _BASE.replace(old, new, 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an outbox record: JSONDecodeError"),
        (b"\xff", "not an outbox record: UnicodeDecodeError"),
        (_BASE + b"\xff", "not an outbox record: UnicodeDecodeError"),
        (_edit(b"curl", b"c\xed\xa0\x80rl"), "not an outbox record: UnicodeDecodeError"),
        (b"\xef\xbb\xbf" + _BASE, "not an outbox record: JSONDecodeError"),
        (_BASE + b"x", "not an outbox record: JSONDecodeError"),
        (_BASE + b"\x0b", "not an outbox record: JSONDecodeError"),
        (_edit(b"curl", b"c\x01rl"), "not an outbox record: JSONDecodeError"),
        (_edit(b"curl", b"c\\xrl"), "not an outbox record: JSONDecodeError"),
        (_edit(b'"v":1', b'"v":01'), "not an outbox record: JSONDecodeError"),
        (b"[]", "not an outbox record: TypeError"),
        (b'"x"', "not an outbox record: TypeError"),
        (b"null", "not an outbox record: TypeError"),
        (b"{}", "not an outbox record: KeyError"),
        (_edit(b'"watch":{', b'"watch":[{'), "not an outbox record: JSONDecodeError"),
        (_edit(b',"unwatch":null', b""), "not an outbox record: KeyError"),
        (_edit(b'"notify_url":', b'"url":'), "not an outbox record: KeyError"),
        (_edit(b'"v":1', b'"v":2'), "unsupported audit event version 2"),
        (_edit(b'"v":1', b'"v":"1"'), "unsupported audit event version '1'"),
        (_edit(b',"v":1', b""), "not an audit event: unexpected or missing fields"),
        (_edit(b'"v":1', b'"v":1,"x":1'), "not an audit event: unexpected or missing fields"),
        (_edit(b'"v":1', b'"v":1,"actor":null'), "not an audit event: actor is absent, never null"),
        (_edit(b'"v":1', b'"v":1,"actor":{}'), "not an audit event: actor must have email and subject"),  # noqa: E501
        (_edit(b'"outcome":"ok"', b'"outcome":"OK"'), "not an audit event outcome: 'OK'"),
        (_edit(b'"type":"secret.viewed"', b'"type":1'), "not an audit event type: 1"),
        (_edit(b'"at":"2030-01-01T00:07', b'"at":"2030-01-01T24:07'), "hour must be in 0..23"),
        (_edit(b".000Z", b".000z"), "time must look like 2030-01-01T00:00:00.000Z"),
        (_edit(b'"client_ip":"203.0.113.7"', b'"client_ip":"x"'), "client_ip 'x' is not an IP address"),  # noqa: E501
        (_edit(b'"country":"DE"', b'"country":"de"'), "country must be an ISO 3166-1 alpha-2 code in upper case"),  # noqa: E501
        (_edit(b'"detail":{"n":7}', b'"detail":{"n":7.0}'), "policy/detail values are str, int, bool or None, not float"),  # noqa: E501
        (_edit(b'"detail":{"n":7}', b'"detail":{"pin":7}'), "policy/detail key 'pin' names secret material"),  # noqa: E501
        (_edit(b'"detail":{"n":7}', b'"detail":[]'), "policy/detail must be a mapping"),
        (_edit(b'"id":"0123', b'"id":"X123'), "invalid literal for int() with base 16: 'X123456789abcdef0123456789abcdef'"),  # noqa: E501
        (_edit(b'"id":"0123', b'"id":"123'), "outbox record id must be 32 hex digits"),
        (_edit(b'"id":"0123456789abcdef0123456789abcdef"', b'"id":null'), "outbox record id must be 32 hex digits"),  # noqa: E501
        (_edit(b'"expires_at":"2030', b'"expires_at":"0000'), "year 0 is out of range"),
        (b'{"id":"0123456789abcdef0123456789abcdef","event":' + b"[" * 100_000, "not an outbox record: RecursionError"),  # noqa: E501
    ],
)  # fmt: skip
def test_bytes_that_are_not_a_record_raise_the_value_error_they_always_did(
    data: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        json_reader(data)
    assert str(refused.value) == message  # the case is what it says

    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        OutboxRecord.from_bytes(data)

    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"v":1', b'"v":1.0'),
        (b'"v":1', b'"v":true'),
        (b',"v":1', b',"v":1,"v":1'),
        (b'"n":7', b'"n":7,"n":8'),
        (b'"n":7', b'"n":true'),
        (b'"n":7', b'"n":123456789012345678901234567890'),
        (b'"country":"DE"', b'"country":"\\u0044E"'),
        (b'"user_agent":"curl', b'"user_agent":"\\ud800curl'),
        (b'"user_agent":"curl', b'"user_agent":"\\u2028\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000curl'),
        (b'"id":"0123', b'"id":"0x23'),
        (b'"id":"0123456789abcdef', b'"id":"0123456789ABCDEF'),
        (b'"watch":{"id":"secret-0000"', b'"watch":{"id":5'),
        (b'"notify_url":"https://hooks.example/\xc3\xa9"', b'"notify_url":["x"]'),
        (b'"notify_url":', b'"x":1,"notify_url":'),
        (b'"unwatch":null', b'"unwatch":null,"extra":[1]'),
        (b'"unwatch":null', b'"unwatch":7'),
        (b'"v":1', b'"v":1,"actor":{"email":null,"subject":null}'),
        (b'"v":1', b'"v":1,"actor":{"email":null,"subject":"s","email":"e"}'),
        (b'"client_ip":"203.0.113.7"', b'"client_ip":"::FFFF:203.0.113.7"'),
        (b"{", b" \t\n\r{"),
    ],
)
def test_records_the_fast_reader_leaves_or_takes_are_read_as_they_always_were(
    old: bytes, new: bytes
) -> None:
    assert_same_verdict(_edit(old, new))


def test_the_fast_reader_keeps_no_bytes_for_a_record_it_leaves_to_the_earlier_one() -> None:
    read_fast = OutboxRecord.from_bytes(_BASE)
    read_late = OutboxRecord.from_bytes(_edit(b'"v":1', b'"v":1.0'))

    assert kept_bytes(read_fast) == record().event.canonical()
    assert kept_bytes(read_late) is None
    assert read_late.event_bytes() == record().event.canonical()
    assert kept_bytes(record()) is None
    assert read_fast == read_late == record()


@pytest.mark.parametrize(
    ("at", "kept"),
    [
        ("2030-01-01T23", True),
        ("2030-01-01T24", False),
        ("\u0662\u0660\u0663\u0660-01-01T00", False),
    ],
)
def test_a_time_a_python_reads_other_than_format_time_writes_it_is_never_kept_as_read(
    at: str, kept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.14 reads ``T24:00:00`` as the next midnight, which ``format_time`` writes as
    ``T00:00``; a ``parse_time`` could read other digits than ASCII. Here ``parse_time`` is
    made to read both on any Python: the record must still chain its canonical bytes."""
    import burnlink.audit.events as events
    import burnlink.audit.outbox as outbox

    def lenient(text: str) -> datetime:
        text = "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in text)
        if text[11:13] == "24":
            return parse_time(text[:11] + "23" + text[13:])
        return parse_time(text)

    monkeypatch.setattr(outbox, "parse_time", lenient)
    monkeypatch.setattr(events, "parse_time", lenient)
    data = _edit(b'"at":"2030-01-01T00', f'"at":"{at}'.encode())

    item = OutboxRecord.from_bytes(data)

    assert item.event_bytes() == item.event.canonical()
    assert (kept_bytes(item) is not None) == kept


def test_an_event_member_escaped_or_doubled_reads_as_json_reads_it() -> None:
    """Later members win, as in ``json``; escapes in names and values are undone first."""
    data = _edit(b'"request_id":"req-7"', b'"request_id":"a","request\\u005fid":"req-\\u0037"')

    item = assert_same_verdict(data)

    assert item is not None
    assert item.event.request_id == "req-7"
    assert kept_bytes(item) == record().event.canonical()


def test_a_missing_member_is_refused_even_when_the_rest_is_fine() -> None:
    assert assert_same_verdict(_edit(b',"unwatch":null', b"")) is None
    assert assert_same_verdict(_edit(b'"id":"' + ID.encode() + b'",', b"")) is None


# --- the checks without a regex ------------------------------------------------------------

_ID_BYTES = st.binary(min_size=32, max_size=32) | st.text(
    "0123456789abcdefABCDEFgx_ \u0660", min_size=30, max_size=33
).map(lambda t: t.encode())


@_SETTINGS
@given(_ID_BYTES, st.sampled_from([b'","event":{}}', b'","event"', b'", "event":{}}']))
def test_peek_id_names_exactly_the_records_whose_id_is_32_lower_case_hex_digits(
    hex_id: bytes, tail: bytes
) -> None:
    data = b'{"id":"' + hex_id + tail

    expected = (
        hex_id.decode()
        if re.fullmatch(rb"[0-9a-f]{32}", hex_id) and tail.startswith(b'","event":')
        else None
    )
    assert peek_id(data) == expected


_TIME_TEXT = st.text("0123456789-T:.Z z+\u0661", min_size=22, max_size=26) | _TIMES.map(
    lambda t: t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
)


@_SETTINGS
@given(_TIME_TEXT)
@example("2030-01-01T00:00:00.000Z")
@example("2030-01-01T00:00:00Z")
@example("2030-01-01T00:00:00.000+00:00")
@example("2030-01-01T00:00:00.000000Z")
@example("2030-01-01T24:00:00.000Z")
@example("\u0662030-01-01T00:00:00.000Z")
@example("20300101T000000.000Z")
def test_the_fast_readers_time_is_parse_times_for_format_times_text_and_none_else(
    text: str,
) -> None:
    try:
        expected: object = parse_time(text)
    except ValueError:
        expected = None
    read = _utc_time(text)

    if isinstance(expected, datetime) and format_time(expected) == text:
        assert typed(read) == typed(expected)
    else:  # nothing parse_time refuses, nor text it reads that format_time would not write
        assert read is None
