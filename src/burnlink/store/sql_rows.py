"""How both SQL stores (``store/sqlite``, ``store/postgres``) lay sessions and API tokens out
in rows, and back, and read a receipt with its events.

The two keep the tables ``sessions`` and ``api_tokens`` with the same columns in the same
order, read a receipt with the same columns, and differ only in the type of two kinds of
column: a time (SQLite: INTEGER milliseconds since the Unix epoch; PostgreSQL:
``timestamptz``) and a list of names (SQLite: a JSON array of strings; PostgreSQL:
``text[]``). ``ColumnTypes`` says how one store writes and reads those; the mapping itself is
here once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from burnlink.models import EndReason, Event, EventKind, ReceiptRecord, Viewer
from burnlink.store.identity import SessionRecord, TokenRecord

__all__ = [
    "SESSION_COLUMNS",
    "TOKEN_COLUMNS",
    "ColumnTypes",
    "receipt_from_rows",
    "session_from_row",
    "session_row",
    "token_from_row",
    "token_row",
]

SESSION_COLUMNS: Final = (
    "digest",
    "subject",
    "email",
    "groups",
    "mfa",
    "auth_time",
    "created_at",
    "last_seen",
    "expires_at",
)
"""The columns of a session, in the order ``session_row`` writes and ``session_from_row``
reads them."""

TOKEN_COLUMNS: Final = (
    "token_id",
    "digest",
    "subject",
    "email",
    "groups",
    "name",
    "scopes",
    "created_at",
    "expires_at",
    "last_used",
    "revoked_at",
)
"""The columns of a token, in the order ``token_row`` writes and ``token_from_row`` reads
them (the stores add ``keep_until`` after them on insert)."""


@dataclass(frozen=True, slots=True)
class ColumnTypes:
    """How one SQL store writes a time and a list of names in a column, and reads them back."""

    time: Callable[[datetime], object]
    read_time: Callable[[Any], datetime]
    names: Callable[[tuple[str, ...]], object]
    read_names: Callable[[Any], tuple[str, ...]]

    def maybe_time(self, moment: datetime | None) -> object:
        """``time``, with ``None`` (NULL) left as it is."""
        return None if moment is None else self.time(moment)

    def read_maybe_time(self, value: Any) -> datetime | None:
        """``read_time``, with NULL read as ``None``."""
        return None if value is None else self.read_time(value)


def session_row(record: SessionRecord, types: ColumnTypes) -> tuple[object, ...]:
    """The values of ``SESSION_COLUMNS`` for ``record``."""
    return (
        record.digest,
        record.subject,
        record.email,
        types.names(record.groups),
        record.mfa,
        types.time(record.auth_time),
        types.time(record.created_at),
        types.time(record.last_seen),
        types.time(record.expires_at),
    )


def session_from_row(row: Sequence[Any], types: ColumnTypes) -> SessionRecord:
    """The ``SessionRecord`` of a row of ``SESSION_COLUMNS``."""
    digest, subject, email, groups, mfa, auth_time, created_at, last_seen, expires_at = row
    return SessionRecord(
        digest=bytes(digest),
        subject=subject,
        email=email,
        groups=types.read_names(groups),
        mfa=bool(mfa),
        auth_time=types.read_time(auth_time),
        created_at=types.read_time(created_at),
        last_seen=types.read_time(last_seen),
        expires_at=types.read_time(expires_at),
    )


def token_row(record: TokenRecord, types: ColumnTypes) -> tuple[object, ...]:
    """The values of ``TOKEN_COLUMNS`` for ``record``."""
    return (
        record.token_id,
        record.digest,
        record.subject,
        record.email,
        types.names(record.groups),
        record.name,
        types.names(record.scopes),
        types.time(record.created_at),
        types.time(record.expires_at),
        types.maybe_time(record.last_used),
        types.maybe_time(record.revoked_at),
    )


def token_from_row(row: Sequence[Any], types: ColumnTypes) -> TokenRecord:
    """The ``TokenRecord`` of a row of ``TOKEN_COLUMNS``."""
    token_id, digest, subject, email, groups, name, scopes, created, expires, used, revoked = row
    return TokenRecord(
        token_id=token_id,
        digest=bytes(digest),
        subject=subject,
        email=email,
        groups=types.read_names(groups),
        name=name,
        scopes=types.read_names(scopes),
        created_at=types.read_time(created),
        expires_at=types.read_time(expires),
        last_used=types.read_maybe_time(used),
        revoked_at=types.read_maybe_time(revoked),
    )


def receipt_from_rows(
    secret_id: str, rows: Sequence[Sequence[Any]], types: ColumnTypes
) -> ReceiptRecord:
    """The ``ReceiptRecord`` of the (non-empty) rows of one receipt joined with its events:
    ``manage_digest, created_at, expires_at, max_views, views_used, ended_at, end_reason,
    owner, label, owner_email`` then ``at, kind, ip, user_agent, viewer_email, viewer_mfa`` of
    an event (NULL in a receipt's one row when it has none; ``viewer_mfa`` NULL: no viewer)."""
    manage, created, expires, max_views, views_used, ended, reason = rows[0][:7]
    owner, label, owner_email = rows[0][7:10]
    events = tuple(
        Event(
            at=types.read_time(at),
            kind=EventKind(kind),
            ip=ip,
            user_agent=user_agent,
            viewer=None if viewer_mfa is None else Viewer(viewer_email, bool(viewer_mfa)),
        )
        for *_, at, kind, ip, user_agent, viewer_email, viewer_mfa in rows
        if at is not None
    )
    return ReceiptRecord(
        secret_id=secret_id,
        manage_digest=bytes(manage),
        created_at=types.read_time(created),
        expires_at=types.read_time(expires),
        max_views=int(max_views),
        views_used=int(views_used),
        ended_at=types.read_maybe_time(ended),
        end_reason=None if reason is None else EndReason(reason),
        events=events,
        owner=owner,
        owner_email=owner_email,
        label=label,
    )
