"""The outbox: events recorded by the secret store, waiting to be sealed into the audit log.

Every action records its event in the same atomic store operation as the state change it
describes (the Redis script, the SQLite transaction, the PostgreSQL statement): a view that
was taken has its event, and an event that was not written means no view. The store keeps
each event as an ``OutboxRecord`` (opaque bytes to it) until the sealer (``audit.sealer``)
has appended it to the HMAC-chained log and acknowledged it.

A record carries an ``id`` of 128 random bits. The sealer appends and acknowledges in two
steps (two databases), so a crash between them hands the same record to the next sealer;
the audit log remembers the ids it has sealed and appends each at most once. A record may
also carry the expiry-watch change its action implies (``audit.watch``): a created secret is
watched, one that ended another way is not; the sealer writes it in the same audit
transaction as the event.

The bytes are JSON: ``{"id", "event" (AuditEvent.to_dict()), "watch" ({"id", "expires_at",
"notify_url"} or null), "unwatch" (a secret id or null)}``. A ``notify_url`` stays in the
secret store, where the secret's policy already holds it; it never reaches the log.

Layout
    ``to_bytes`` writes the members in that order, so ``{"id":"<32 hex digits>","event":`` is
    a fixed prefix of 49 bytes (records of every earlier version have it too): the sealer names
    a record by it without decoding it (``peek_id``), and the log decodes only the records it
    has not sealed yet (``Sealable``). The event is written in its canonical form
    (``AuditEvent.canonical``: sorted members), which the writer builds once and keeps with the
    record (``canonical``), so the same process's sealer appends it without writing it again
    (``WrittenRecords``); earlier versions wrote the event's members in ``to_dict``'s order,
    and either reader reads either order. A reader of another process's records still builds
    the canonical form itself rather than trust the stored bytes: checking that bytes read
    from a store are exactly an event's canonical form costs about what building them does.

Decoding
    ``from_bytes`` validates the event fully, as ``AuditEvent.from_dict`` does. It first tries
    msgspec with ``Struct`` types of exactly this layout (no other members, no other types)
    and, on the values they admit, the checks of ``AuditEvent.__post_init__``; any record it
    does not accept, or is not sure of, is read by the earlier reader (``json`` and
    ``from_dict``), so which records are accepted, and the ``ValueError`` of those that are
    not, are unchanged. What the fast reader accepts, it also encodes back with sorted keys:
    exactly ``event.canonical()`` (the escaping is the ``json`` module's for every character,
    and the time is the text read, which only ``format_time``'s shape passes), kept for
    ``event_bytes``. Its times and ``peek_id``'s hex digits are checked by ``bytes.translate``
    rather than a regex. tests/audit/test_outbox_decode.py holds both readers to that.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Annotated, Any, Final, Literal, Protocol

import msgspec

from burnlink.audit.events import (
    MAX_AGENT_CLASS,
    MAX_EMAIL,
    MAX_REQUEST_ID,
    MAX_SUBJECT,
    AuditEvent,
    AuditEventType,
    Outcome,
    Scalar,
    canonical_ip,
    format_time,
    frozen_labels,
    parse_time,
)
from burnlink.audit.watch import Watched
from burnlink.useragents import MAX_USER_AGENT

__all__ = ["OutboxRecord", "Sealable", "WrittenRecords", "new_record_id", "peek_id"]

_ID_BYTES = 16
_HEAD: Final = '{"id":"'
_EVENT_AT: Final = len(_HEAD) + 2 * _ID_BYTES + len('","event":')
"""Where the event starts in a record of the fixed layout (49)."""
_HEAD_BYTES: Final = _HEAD.encode()
_EVENT_MEMBER: Final = b'","event":'
_HEX_DIGITS: Final = b"0123456789abcdef"
_DIGITS_AS_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
_TIME_SHAPE: Final = b"0000-00-00T00:00:00.000Z"
"""``format_time``'s text with every digit 0: what ``_utc_time`` lets through."""
_DECODE: Final = json.JSONDecoder().decode
"""``json.loads`` of text, without its search for a UTF-16 or UTF-32 encoding: records are UTF-8."""


def new_record_id() -> str:
    """A fresh record id: 32 lower-case hex digits."""
    return secrets.token_hex(_ID_BYTES)


def peek_id(data: bytes) -> str | None:
    """The id of a record in the fixed layout (see the module docstring), read without
    decoding it; ``None`` for any other bytes. Whether the rest parses is not checked: a
    record whose id this gives and that does not parse is still that id's record."""
    if data.startswith(_HEAD_BYTES) and data[_EVENT_AT - 10 : _EVENT_AT] == _EVENT_MEMBER:
        hex_id = data[len(_HEAD) : _EVENT_AT - 10]
        if not hex_id.translate(None, _HEX_DIGITS):  # 32 lower-case hex digits (C, no regex)
            return hex_id.decode("ascii")
    return None


class Sealable(Protocol):
    """What ``AuditBackend.seal`` takes: an ``OutboxRecord``, or one still in its stored form
    whose ``id`` is known and that is decoded (``record()``) only if it is to be appended."""

    @property
    def id(self) -> str:
        """The record's id: what the log remembers as sealed."""
        ...

    def record(self) -> OutboxRecord:
        """The record, decoded and validated, with this ``id``."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One recorded event, with the expiry-watch change that goes with it."""

    event: AuditEvent
    id: str = field(default_factory=new_record_id)
    watch: Watched | None = None
    unwatch: str | None = None
    canonical: bytes | None = field(default=None, kw_only=True, repr=False, compare=False)
    """``event.canonical()``, when whoever built the record already had it: the writer, which
    stores it as the record's event, or the fast reader (see the module docstring)."""

    def record(self) -> OutboxRecord:
        """This record (``Sealable``)."""
        return self

    def event_bytes(self) -> bytes:
        """``event.canonical()``: what the chain MAC covers and the log stores."""
        kept = self.canonical
        return self.event.canonical() if kept is None else kept

    def to_bytes(self) -> bytes:
        """The form the store keeps (see the module docstring), written member by member; the
        event is its canonical form (``event_bytes``), so the sealer of the same process has
        it without writing it again."""
        watch = "null"
        if self.watch is not None:
            url = self.watch.notify_url
            watch = (
                f'{{"id":{encode_basestring(self.watch.secret_id)}'
                f',"expires_at":"{format_time(self.watch.expires_at)}"'
                f',"notify_url":{"null" if url is None else encode_basestring(url)}}}'
            )
        unwatch = "null" if self.unwatch is None else encode_basestring(self.unwatch)
        return b"".join(
            (
                f'{{"id":{encode_basestring(self.id)},"event":'.encode(),
                self.event_bytes(),
                f',"watch":{watch},"unwatch":{unwatch}}}'.encode(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> OutboxRecord:
        """Undo ``to_bytes``, with the event validated; ``ValueError`` for anything else."""
        record = _read_fast(data)
        return _read_json(data) if record is None else record


class WrittenRecords:
    """The records this process handed to the store lately, with the bytes it stored: what
    the sealer of the same process need not decode again (``audit.sealer.Stored``).

    Decoding a record and validating its event costs about twice what writing its canonical
    bytes does, and the sealer would decode what the same process encoded moments earlier.
    A record is taken from here only when the store handed out exactly the bytes kept with
    it, so the log seals what the store holds, whatever was kept. A view's record, which the
    store completes with the secret's ``max_views`` (``store.ViewRecord``), is kept as the two
    parts around that count (``expect_views``) and taken with the count the store wrote.

    At most ``limit`` records are kept, the oldest forgotten first: those another process's
    sealer sealed, or whose action failed, are never asked for. Shared by the event loop,
    which keeps, and the audit log's thread, which takes.
    """

    def __init__(self, limit: int = 2048) -> None:
        """Keep at most ``limit`` records."""
        self._limit = limit
        self._records: dict[str, tuple[OutboxRecord, bytes, bytes | None]] = {}
        """By id: the record, and its bytes, or the bytes before and after its view count."""
        self._lock = threading.Lock()

    def keep(self, record: OutboxRecord, data: bytes) -> None:
        """Remember ``record``, stored as ``data`` (its ``to_bytes()``)."""
        records = self._records
        with self._lock:
            records[record.id] = (record, data, None)
            if len(records) > self._limit:
                del records[next(iter(records))]

    def expect_views(self, data: bytes, head: bytes, tail: bytes) -> None:
        """The record kept as ``data``, whose event's ``detail`` is ``{"max_views": 0}``, is
        stored as ``head``, the secret's ``max_views`` in decimal and ``tail`` instead:
        ``data`` is ``head``, ``0`` and ``tail``, ``head`` ending with
        ``"detail":{"max_views":`` and ``tail`` starting with ``}``. Anything else is ignored
        (the record is then decoded)."""
        record_id = peek_id(data)
        if (
            record_id is None
            or not head.endswith(_MAX_VIEWS_OPENING)
            or tail[:1] != b"}"
            or head + b"0" + tail != data
        ):
            return
        with self._lock:
            kept = self._records.get(record_id)
            if kept is not None and kept[1] == data and kept[0].event.detail == _NO_VIEWS:
                self._records[record_id] = (kept[0], head, tail)

    def take(self, record_id: str, data: bytes) -> OutboxRecord | None:
        """The record kept under ``record_id`` if it was stored as ``data``, forgetting it;
        else ``None`` (decode ``data`` then)."""
        with self._lock:
            kept = self._records.pop(record_id, None)
        if kept is None:
            return None
        record, head, tail = kept
        if tail is None:
            return record if data == head else None
        if not (data.startswith(head) and data.endswith(tail)):
            return None
        count = data[len(head) : len(data) - len(tail)]
        # Decimal as the store writes it (``b"%d"``): what JSON reads as that number, no more.
        if not (0 < len(count) <= _MAX_COUNT_DIGITS and count.isdigit()) or (
            count[:1] == b"0" and count != b"0"
        ):
            return None
        event = record.event.with_detail({"max_views": int(count)})
        canonical = None
        if record.canonical is not None:  # the count goes where it went in the stored bytes
            before, marker, after = record.canonical.rpartition(_NO_VIEWS_MEMBER)
            if marker:
                canonical = before + _MAX_VIEWS_OPENING + count + b"}" + after
        return OutboxRecord(event, record.id, record.watch, record.unwatch, canonical=canonical)

    def __len__(self) -> int:
        """How many records are kept."""
        return len(self._records)


_NO_VIEWS: Final = {"max_views": 0}
_MAX_VIEWS_OPENING: Final = b'"detail":{"max_views":'
_NO_VIEWS_MEMBER: Final = _MAX_VIEWS_OPENING + b"0}"
_MAX_COUNT_DIGITS: Final = 18
"""Longer counts are decoded: no secret has that many views."""


def _read_json(data: bytes) -> OutboxRecord:
    """The earlier reader: every record ``from_bytes`` accepts, and its ``ValueError``."""
    try:
        document = _DECODE(str(data, "utf-8"))
        event = AuditEvent.from_dict(document["event"])
        return _record(document["id"], event, document)
    except (
        KeyError,
        TypeError,
        IndexError,
        RecursionError,
        json.JSONDecodeError,
        UnicodeDecodeError,
    ) as exc:
        raise ValueError(f"not an outbox record: {type(exc).__name__}") from None


def _record(
    record_id: object,
    event: AuditEvent,
    document: Mapping[str, Any],
) -> OutboxRecord:
    watch = document["watch"]
    return OutboxRecord(
        event=event,
        id=_checked_id(record_id),
        watch=None
        if watch is None
        else Watched(str(watch["id"]), parse_time(str(watch["expires_at"])), watch["notify_url"]),
        unwatch=None if document["unwatch"] is None else str(document["unwatch"]),
    )


def _checked_id(value: object) -> str:
    if not isinstance(value, str) or len(value) != 2 * _ID_BYTES:
        raise ValueError("outbox record id must be 32 hex digits")
    int(value, 16)
    return value


_HashText = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]
_CountryText = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}\Z")]


class _ActorLayout(msgspec.Struct, forbid_unknown_fields=True):
    """An event's ``actor`` as ``to_dict`` writes it."""

    email: Annotated[str, msgspec.Meta(max_length=MAX_EMAIL)] | None
    subject: Annotated[str, msgspec.Meta(max_length=MAX_SUBJECT)]


class _EventLayout(msgspec.Struct, forbid_unknown_fields=True):
    """An event as ``to_dict`` writes it; the field names are its members, in sorted order
    when encoded (``canonical``'s)."""

    v: Literal[1]
    at: str
    type: AuditEventType
    outcome: Outcome
    secret_hash: _HashText | None
    client_ip: str | None
    country: _CountryText | None
    user_agent: Annotated[str, msgspec.Meta(max_length=MAX_USER_AGENT)] | None
    agent_class: Annotated[str, msgspec.Meta(max_length=MAX_AGENT_CLASS)] | None
    request_id: Annotated[str, msgspec.Meta(max_length=MAX_REQUEST_ID)] | None
    policy: dict[str, Scalar]
    detail: dict[str, Scalar]
    actor: _ActorLayout | msgspec.UnsetType = msgspec.UNSET


class _WatchLayout(msgspec.Struct, forbid_unknown_fields=True):
    """A record's ``watch`` as ``to_bytes`` writes it."""

    id: str
    expires_at: str
    notify_url: str | None


class _RecordLayout(msgspec.Struct, forbid_unknown_fields=True):
    """A record as ``to_bytes`` writes it, the event's member order aside."""

    id: str
    event: _EventLayout
    watch: _WatchLayout | None
    unwatch: str | None


_LAYOUT: Final = msgspec.json.Decoder(_RecordLayout)
_SORTED: Final = msgspec.json.Encoder(order="sorted")
"""Writes an ``_EventLayout`` as ``canonical_json`` writes its event (the module docstring)."""


def _utc_time(text: str) -> datetime | None:
    """``parse_time(text)`` for exactly the text ``format_time`` writes (ASCII digits, no hour
    24, which newer Pythons read as the next midnight), checked without a regex; ``None``
    for any other text, even one ``parse_time`` reads."""
    if not text.isascii() or text.encode().translate(_DIGITS_AS_ZERO) != _TIME_SHAPE:
        return None
    if text[11:13] == "24":
        return None
    at = datetime.fromisoformat(text)  # its Z reads as UTC itself (Python 3.11 on)
    return at if at.tzinfo is UTC else None


def _read_fast(data: bytes) -> OutboxRecord | None:
    """The record in ``data`` with its canonical event bytes, if it has ``_RecordLayout``
    and values ``AuditEvent`` accepts; ``None`` for anything else, left to ``_read_json``."""
    try:
        layout = _LAYOUT.decode(str(data, "utf-8"))
        fields = layout.event
        # ``at`` is written back as read: only ``format_time``'s own text will do.
        at = _utc_time(fields.at)
        client_ip = fields.client_ip
        if at is None or (client_ip is not None and canonical_ip(client_ip) is None):
            return None
        actor = fields.actor
        event = AuditEvent.from_checked(
            at=at,
            type=fields.type,
            outcome=fields.outcome,
            secret_hash=fields.secret_hash,
            client_ip=client_ip,
            country=fields.country,
            user_agent=fields.user_agent,
            agent_class=fields.agent_class,
            request_id=fields.request_id,
            policy=frozen_labels(fields.policy),
            detail=frozen_labels(fields.detail),
            actor_subject=actor.subject if isinstance(actor, _ActorLayout) else None,
            actor_email=actor.email if isinstance(actor, _ActorLayout) else None,
        )
        watch = layout.watch
        watched = None
        if watch is not None:
            expires_at = _utc_time(watch.expires_at)
            if expires_at is None:
                return None
            watched = Watched(watch.id, expires_at, watch.notify_url)
        record_id = _checked_id(layout.id)
    except (msgspec.DecodeError, ValueError, TypeError):
        return None
    canonical = _SORTED.encode(fields)
    return OutboxRecord(event, record_id, watched, layout.unwatch, canonical=canonical)
