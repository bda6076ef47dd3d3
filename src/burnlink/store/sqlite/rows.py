"""How the SQLite store (``burnlink.store.sqlite.store``) lays records out in rows, and back.

Each statement here writes or reads whole records; the statements that decide something
(consume, count an attempt, end a secret) stay in ``burnlink.store.sqlite.store`` beside the
transactions that run them. Times are INTEGER milliseconds since the Unix epoch (UTC); an
access policy is ``AccessPolicy.to_bytes`` (NULL, from schema version 1, is the empty policy).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from burnlink.clock import from_epoch_ms, to_epoch_ms
from burnlink.models import (
    AccessPolicy,
    Event,
    PassphraseGate,
    SecretMeta,
    SecretRecord,
)
from burnlink.store.secrets import STAND_IN_DIGEST
from burnlink.store.sql_rows import ColumnTypes

__all__ = [
    "INSERT_INTO_EVENTS",
    "INSERT_INTO_RECEIPTS",
    "INSERT_INTO_SECRETS",
    "SELECT_META",
    "SELECT_OWNED",
    "SELECT_RECEIPT",
    "SQLITE_TYPES",
    "STAND_IN_ROW",
    "Row",
    "event_row",
    "meta_from_row",
    "receipt_row",
    "secret_row",
    "viewer_columns",
]

Row = Sequence[Any]


INSERT_INTO_RECEIPTS: Final = (
    "INSERT INTO receipts (id, manage_digest, created_at, expires_at, max_views, views_used,"
    " keep_until, owner, label, owner_email) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)"
)
INSERT_INTO_SECRETS: Final = (
    "INSERT INTO secrets (id, envelope, access_digest, created_at, expires_at, max_views,"
    " views_left, attempts_left, passphrase_kdf, passphrase_iterations, passphrase_salt,"
    " passphrase_proof_digest, owner, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_INTO_EVENTS: Final = (
    "INSERT INTO events (receipt_id, seq, at, kind, ip, user_agent, viewer_email, viewer_mfa)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_META: Final = (
    "SELECT access_digest, created_at, expires_at, max_views, views_left, attempts_left,"
    " passphrase_kdf, passphrase_iterations, passphrase_salt, passphrase_proof_digest, policy"
    " FROM secrets WHERE id = ? AND expires_at > ?"
)
# One statement, so the receipt and its events agree; a receipt without events is one row
# whose event columns are NULL.
SELECT_RECEIPT: Final = (
    "SELECT r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used,"
    " r.ended_at, r.end_reason, r.owner, r.label, r.owner_email, e.at, e.kind, e.ip,"
    " e.user_agent, e.viewer_email, e.viewer_mfa"
    " FROM receipts AS r LEFT JOIN events AS e ON e.receipt_id = r.id"
    " WHERE r.id = ? AND r.keep_until > ? ORDER BY e.seq"
)
# The same columns, led by the id, for the kept receipts of one owner, newest first: the
# subquery walks the index receipts_owner; one statement, so receipts and events agree.
SELECT_OWNED: Final = (
    "SELECT r.id, r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used,"
    " r.ended_at, r.end_reason, r.owner, r.label, r.owner_email, e.at, e.kind, e.ip,"
    " e.user_agent, e.viewer_email, e.viewer_mfa"
    " FROM receipts AS r LEFT JOIN events AS e ON e.receipt_id = r.id"
    " WHERE r.id IN (SELECT id FROM receipts WHERE owner = ? AND keep_until > ?"
    " ORDER BY created_at DESC, id DESC LIMIT ?)"
    " ORDER BY r.created_at DESC, r.id DESC, e.seq"
)


def receipt_row(record: SecretRecord, *, keep_until_ms: int) -> tuple[object, ...]:
    """The parameters of ``INSERT_INTO_RECEIPTS`` for a new secret's receipt."""
    return (
        record.secret_id,
        record.manage_digest,
        to_epoch_ms(record.created_at),
        to_epoch_ms(record.expires_at),
        record.max_views,
        keep_until_ms,
        record.owner,
        record.label,
        record.owner_email,
    )


def secret_row(record: SecretRecord) -> tuple[object, ...]:
    """The parameters of ``INSERT_INTO_SECRETS``: all views and attempts left."""
    gate = record.passphrase
    return (
        record.secret_id,
        record.envelope,
        record.access_digest,
        to_epoch_ms(record.created_at),
        to_epoch_ms(record.expires_at),
        record.max_views,
        record.max_views,
        record.max_attempts,
        gate.kdf if gate else None,
        gate.iterations if gate else None,
        gate.salt if gate else None,
        gate.proof_digest if gate else None,
        record.owner,
        record.policy.to_bytes(),
    )


def event_row(secret_id: str, seq: int, event: Event) -> tuple[object, ...]:
    """The parameters of ``INSERT_INTO_EVENTS``."""
    return (
        secret_id,
        seq,
        to_epoch_ms(event.at),
        event.kind.value,
        event.ip,
        event.user_agent,
        *viewer_columns(event),
    )


def viewer_columns(event: Event) -> tuple[str | None, int | None]:
    """``viewer_email`` and ``viewer_mfa`` of ``event``'s row: both NULL without a viewer
    (``viewer_mfa`` is never NULL with one, its email may be)."""
    viewer = event.viewer
    return (None, None) if viewer is None else (viewer.email, int(viewer.mfa))


SQLITE_TYPES: Final = ColumnTypes(
    time=to_epoch_ms,
    read_time=from_epoch_ms,
    names=lambda values: json.dumps(list(values), separators=(",", ":")),
    read_names=lambda text: tuple(str(v) for v in json.loads(text)),
)
"""How the SQLite store keeps the rows ``burnlink.store.sql_rows`` maps: times as INTEGER
milliseconds since the Unix epoch, lists of names as JSON arrays of strings."""


STAND_IN_ROW: Final[Row] = (
    STAND_IN_DIGEST, 0, 0, 1, 1, 5, None, None, None, None, AccessPolicy().to_bytes()
)  # fmt: skip
"""A ``SELECT_META`` row as a secret without rules has it: what a lookup of an id that is not
live decodes instead (``store.secrets.STAND_IN_DIGEST``)."""


def meta_from_row(secret_id: str, row: Row) -> SecretMeta:
    """The ``SecretMeta`` of a row of ``SELECT_META``."""
    access, created, expires, max_views, views_left, attempts_left = row[:6]
    kdf, its, salt, proof, policy = row[6:]
    gate = (
        None
        if kdf is None
        else PassphraseGate(
            kdf=str(kdf), iterations=int(its), salt=bytes(salt), proof_digest=bytes(proof)
        )
    )
    return SecretMeta(
        secret_id=secret_id,
        access_digest=bytes(access),
        created_at=from_epoch_ms(created),
        expires_at=from_epoch_ms(expires),
        max_views=int(max_views),
        views_left=int(views_left),
        attempts_left=int(attempts_left),
        passphrase=gate,
        # NULL: a secret created before policies were stored (schema version 1).
        policy=AccessPolicy() if policy is None else AccessPolicy.from_bytes(bytes(policy)),
    )
