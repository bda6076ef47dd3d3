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
    has not sealed yet (``Sealable``). ``from_bytes`` validates the event fully
    (``AuditEvent.from_dict``); its canonical bytes are built once (``event_bytes``), for the
    chain's MAC and the log's row, only when it is appended. (Carrying the canonical bytes in
    the record was measured and not kept: checking that bytes read from a store are exactly an
    event's canonical form costs about what building them does, and sorting the keys moved
    that cost onto the request.)
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Final, Protocol

from burnlink.audit.events import AuditEvent, format_time, parse_time
from burnlink.audit.watch import Watched

__all__ = ["OutboxRecord", "Sealable", "new_record_id", "peek_id"]

_ID_BYTES = 16
_HEAD: Final = '{"id":"'
_EVENT_AT: Final = len(_HEAD) + 2 * _ID_BYTES + len('","event":')
"""Where the event starts in a record of the fixed layout (49)."""
_HEAD_BYTES: Final = _HEAD.encode()
_EVENT_MEMBER: Final = b'","event":'
_HEX_ID: Final = re.compile(rb"[0-9a-f]{32}")
_DECODE: Final = json.JSONDecoder().decode
"""``json.loads`` of text, without its search for a UTF-16 or UTF-32 encoding: records are UTF-8."""


def new_record_id() -> str:
    """A fresh record id: 32 lower-case hex digits."""
    return secrets.token_hex(_ID_BYTES)


def peek_id(data: bytes) -> str | None:
    """The id of a record in the fixed layout (see the module docstring), read without
    decoding it; ``None`` for any other bytes. Whether the rest parses is not checked: a
    record whose id this gives and that does not parse is still that id's record."""
    if (
        data.startswith(_HEAD_BYTES)
        and data[_EVENT_AT - 10 : _EVENT_AT] == _EVENT_MEMBER
        and _HEX_ID.fullmatch(data, len(_HEAD), _EVENT_AT - 10)
    ):
        return data[len(_HEAD) : _EVENT_AT - 10].decode("ascii")
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

    def record(self) -> OutboxRecord:
        """This record (``Sealable``)."""
        return self

    def event_bytes(self) -> bytes:
        """``event.canonical()``: what the chain MAC covers and the log stores."""
        return self.event.canonical()

    def to_bytes(self) -> bytes:
        """The form the store keeps (see the module docstring), written member by member."""
        watch = "null"
        if self.watch is not None:
            url = self.watch.notify_url
            watch = (
                f'{{"id":{encode_basestring(self.watch.secret_id)}'
                f',"expires_at":"{format_time(self.watch.expires_at)}"'
                f',"notify_url":{"null" if url is None else encode_basestring(url)}}}'
            )
        unwatch = "null" if self.unwatch is None else encode_basestring(self.unwatch)
        return (
            f'{{"id":{encode_basestring(self.id)},"event":{self.event.to_json()}'
            f',"watch":{watch},"unwatch":{unwatch}}}'
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> OutboxRecord:
        """Undo ``to_bytes``, with the event validated; ``ValueError`` for anything else."""
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
