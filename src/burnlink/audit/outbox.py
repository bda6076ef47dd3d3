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
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from burnlink.audit.events import AuditEvent, format_time, parse_time
from burnlink.audit.watch import Watched

__all__ = ["OutboxRecord", "new_record_id"]

_ID_BYTES = 16


def new_record_id() -> str:
    """A fresh record id: 32 lower-case hex digits."""
    return secrets.token_hex(_ID_BYTES)


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One recorded event, with the expiry-watch change that goes with it."""

    event: AuditEvent
    id: str = field(default_factory=new_record_id)
    watch: Watched | None = None
    unwatch: str | None = None

    def to_bytes(self) -> bytes:
        """The form the store keeps (see the module docstring)."""
        watch = None
        if self.watch is not None:
            watch = {
                "id": self.watch.secret_id,
                "expires_at": format_time(self.watch.expires_at),
                "notify_url": self.watch.notify_url,
            }
        document: dict[str, Any] = {
            "id": self.id,
            "event": self.event.to_dict(),
            "watch": watch,
            "unwatch": self.unwatch,
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> OutboxRecord:
        """Undo ``to_bytes``; ``ValueError`` for anything else."""
        try:
            document = json.loads(data)
            watch = document["watch"]
            return cls(
                event=AuditEvent.from_dict(document["event"]),
                id=_checked_id(document["id"]),
                watch=None
                if watch is None
                else Watched(
                    str(watch["id"]), parse_time(str(watch["expires_at"])), watch["notify_url"]
                ),
                unwatch=None if document["unwatch"] is None else str(document["unwatch"]),
            )
        except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not an outbox record: {type(exc).__name__}") from None


def _checked_id(value: object) -> str:
    if not isinstance(value, str) or len(value) != 2 * _ID_BYTES:
        raise ValueError("outbox record id must be 32 hex digits")
    int(value, 16)
    return value
