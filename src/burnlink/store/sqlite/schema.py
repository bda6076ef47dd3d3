"""The SQLite store's file (``burnlink.store.sqlite.store``): its schema, as the ordered steps that
build it, and ``prepare``, which makes a new connection ready to use.

``MIGRATIONS[n]`` takes a database file from schema version ``n`` to ``n + 1``: a new file runs
every step, an older one only the steps it lacks, so both end with the same tables. A step that
has shipped never changes; a schema change is a new step at the end, and ``SCHEMA_VERSION`` is
the number of steps. ``prepare`` (run by ``SqliteStore.open``) sets the connection's PRAGMAs,
reads ``PRAGMA user_version`` and runs the missing steps inside one ``BEGIN IMMEDIATE``
transaction (SQLite's DDL is transactional), so processes that open an old file at the same
time migrate it exactly once, and a failed step leaves the file as it was.

Times are INTEGER milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Final

from burnlink.errors import ConfigError, StorageUnavailable

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "database_file", "prepare", "prepare_file"]

LOG = logging.getLogger(__name__)

_V1: Final = (
    """
    CREATE TABLE IF NOT EXISTS receipts (
        id            TEXT    NOT NULL PRIMARY KEY,
        manage_digest BLOB    NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        max_views     INTEGER NOT NULL,
        views_used    INTEGER NOT NULL DEFAULT 0,
        ended_at      INTEGER,
        end_reason    TEXT CHECK (end_reason IN ('viewed', 'burned', 'locked', 'expired')),
        keep_until    INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS receipts_keep_until ON receipts (keep_until)",
    """
    CREATE TABLE IF NOT EXISTS secrets (
        id                      TEXT    NOT NULL PRIMARY KEY
                                        REFERENCES receipts (id) ON DELETE CASCADE,
        envelope                BLOB    NOT NULL,
        access_digest           BLOB    NOT NULL,
        created_at              INTEGER NOT NULL,
        expires_at              INTEGER NOT NULL,
        max_views               INTEGER NOT NULL,
        views_left              INTEGER NOT NULL,
        attempts_left           INTEGER NOT NULL,
        passphrase_kdf          TEXT,
        passphrase_iterations   INTEGER,
        passphrase_salt         BLOB,
        passphrase_proof_digest BLOB,
        owner                   TEXT,
        CHECK (
            (passphrase_kdf IS NULL) = (passphrase_iterations IS NULL)
            AND (passphrase_kdf IS NULL) = (passphrase_salt IS NULL)
            AND (passphrase_kdf IS NULL) = (passphrase_proof_digest IS NULL)
        )
    )
    """,
    "CREATE INDEX IF NOT EXISTS secrets_expires_at ON secrets (expires_at)",
    """
    CREATE TABLE IF NOT EXISTS events (
        receipt_id TEXT    NOT NULL REFERENCES receipts (id) ON DELETE CASCADE,
        seq        INTEGER NOT NULL,
        at         INTEGER NOT NULL,
        kind       TEXT    NOT NULL,
        ip         TEXT,
        user_agent TEXT,
        PRIMARY KEY (receipt_id, seq)
    ) WITHOUT ROWID
    """,
)
"""Secrets, their receipts and the receipts' events."""

_V2: Final = (
    # AccessPolicy.to_bytes(); NULL (every secret created before this step) is the empty policy.
    "ALTER TABLE secrets ADD COLUMN policy BLOB",
    # At most one code per secret, gone with it: the cascade covers every way a secret ends.
    """
    CREATE TABLE IF NOT EXISTS codes (
        secret_id  TEXT    NOT NULL PRIMARY KEY REFERENCES secrets (id) ON DELETE CASCADE,
        digest     BLOB    NOT NULL,
        put_at     INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        tries_left INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    # One row per (bucket, window); window_end lets purge_expired find ended windows by index.
    """
    CREATE TABLE IF NOT EXISTS counters (
        bucket       TEXT    NOT NULL,
        window_start INTEGER NOT NULL,
        window_end   INTEGER NOT NULL,
        hits         INTEGER NOT NULL,
        PRIMARY KEY (bucket, window_start)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS counters_window_end ON counters (window_end)",
)
"""Access policies, one-time codes and rate counters (access rules)."""

_V3: Final = (
    # How many codes were put since the last match: a used-up or expired code now stays (until
    # a match or the end of its secret), so neither wrong tries nor waiting make room for more.
    "ALTER TABLE codes ADD COLUMN sent INTEGER NOT NULL DEFAULT 1",
)
"""The count of one-time codes per secret (``put_code``'s ``max_codes``)."""

_V4: Final = (
    # AUTOINCREMENT: a ref (``seq``) is never handed out twice, even after the newest records
    # were acknowledged and deleted, so a late ``ack_events`` from another process can only
    # delete the records it was given, never a newer one that reused their number.
    """
    CREATE TABLE IF NOT EXISTS outbox (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        record BLOB    NOT NULL
    )
    """,
)
"""The outbox: events recorded with the change they describe, until the sealer acknowledges
them (``audit.outbox``)."""

_V5: Final = (
    # A new name, so that a process of an earlier release still running on this file during a
    # rolling upgrade fails (its store answers 503) on every code, instead of deleting used-up
    # codes, and with them when the last was put, which let a new code be mailed at once.
    "ALTER TABLE codes RENAME TO recipient_codes",
)
"""Recipient codes under a name no earlier release uses (docs/storage.md, "Upgrading")."""

_V6: Final = (
    # The owner and label go on the receipt, which outlives the secret ("my secrets"). Secrets
    # of earlier releases were created without an owner; the copy covers any that had one.
    "ALTER TABLE receipts ADD COLUMN owner TEXT",
    "ALTER TABLE receipts ADD COLUMN label TEXT",
    "UPDATE receipts SET owner = (SELECT s.owner FROM secrets AS s WHERE s.id = receipts.id)"
    " WHERE id IN (SELECT id FROM secrets WHERE owner IS NOT NULL)",
    # Only owned receipts, in the order "my secrets" lists them.
    "CREATE INDEX IF NOT EXISTS receipts_owner ON receipts (owner, created_at DESC, id DESC)"
    " WHERE owner IS NOT NULL",
    # Sessions by the digest of the cookie's id; groups as a JSON array of strings.
    """
    CREATE TABLE IF NOT EXISTS sessions (
        digest     BLOB    NOT NULL PRIMARY KEY,
        subject    TEXT    NOT NULL,
        email      TEXT,
        groups     TEXT    NOT NULL,
        mfa        INTEGER NOT NULL,
        auth_time  INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (subject)",
    "CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at)",
    # API tokens by public id and by digest; keep_until is when the token ended (its revoke,
    # else its expiry) plus the retention: it is listed until then and purged after.
    """
    CREATE TABLE IF NOT EXISTS api_tokens (
        token_id   TEXT    NOT NULL PRIMARY KEY,
        digest     BLOB    NOT NULL UNIQUE,
        subject    TEXT    NOT NULL,
        email      TEXT,
        groups     TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        scopes     TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        last_used  INTEGER,
        revoked_at INTEGER,
        keep_until INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS api_tokens_subject ON api_tokens (subject, created_at DESC)",
    "CREATE INDEX IF NOT EXISTS api_tokens_keep_until ON api_tokens (keep_until)",
)
"""Sign-in: sessions, API tokens, and the owner and label of each receipt (issue 14)."""

_V7: Final = (
    # The owner's email as it was at the create, kept with the receipt so that every receipt
    # (through the manage link too) names the creator. Nullable: a process of the release
    # before, still running during a rolling upgrade, inserts receipts without it.
    "ALTER TABLE receipts ADD COLUMN owner_email TEXT",
)
"""The email of each receipt's owner (issue 14)."""

_V8: Final = (
    # The signed-in recipient a receipt line was made for (``models.Viewer``): their email and
    # whether their sign-in had a second factor; viewer_mfa NULL means no viewer. Nullable: a
    # process of the release before, still running during a rolling upgrade, inserts lines
    # without them.
    "ALTER TABLE events ADD COLUMN viewer_email TEXT",
    "ALTER TABLE events ADD COLUMN viewer_mfa INTEGER",
)
"""The viewer of each receipt line (issue 15)."""

_V9: Final = (
    # Requests for a secret (store/requests.py). The answer is the secret with the same id, in
    # ``secrets`` and ``receipts``; recipients is a JSON array of strings; state is open,
    # answered or expired (an open row past expires_at reads as expired before the sweep).
    """
    CREATE TABLE IF NOT EXISTS requests (
        id               TEXT    NOT NULL PRIMARY KEY,
        requester_digest BLOB    NOT NULL,
        answer_digest    BLOB    NOT NULL,
        public_key       BLOB    NOT NULL,
        description      TEXT    NOT NULL,
        created_at       INTEGER NOT NULL,
        expires_at       INTEGER NOT NULL,
        answer_ttl       INTEGER NOT NULL,
        answer_views     INTEGER NOT NULL,
        recipients       TEXT    NOT NULL,
        notify_url       TEXT,
        notify_email     TEXT,
        owner            TEXT,
        owner_email      TEXT,
        state            TEXT    NOT NULL CHECK (state IN ('open', 'answered', 'expired')),
        answered_at      INTEGER,
        keep_until       INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS requests_open ON requests (expires_at) WHERE state = 'open'",
    "CREATE INDEX IF NOT EXISTS requests_keep_until ON requests (keep_until)",
)
"""Requests for a secret (issue 16)."""

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _V5,
    _V6,
    _V7,
    _V8,
    _V9,
)
"""``MIGRATIONS[n]``: the statements that take a file from version ``n`` to ``n + 1``."""

SCHEMA_VERSION: Final = len(MIGRATIONS)
"""Stored in ``PRAGMA user_version``; a file with a higher number is refused."""


def database_file(path: str) -> Path:
    """The file named by the part of a ``sqlite://`` URL after the scheme."""
    if not path.strip():
        raise ConfigError(
            "BURNLINK_STORE: sqlite:// needs a file path, e.g. sqlite:///var/lib/x.db"
        )
    if path == ":memory:" or path.startswith("file:"):
        raise ConfigError(
            "BURNLINK_STORE: sqlite:// takes a plain file path; use memory:// for a store in memory"
        )
    return Path(path).expanduser()


def prepare_file(file: Path) -> None:
    """Create the parent directory (0700) and an empty database file (0600) if missing.

    SQLite gives its ``-wal`` and ``-shm`` files the permissions of the database file.
    """
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not file.exists():
        os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))


def prepare(file: Path, busy_timeout: timedelta, db: sqlite3.Connection) -> None:
    """Set the PRAGMAs of ``db`` (a connection to ``file`` in autocommit mode), then create,
    migrate or check the schema.

    Raises ``StorageUnavailable`` for a file it cannot use (no WAL, a newer schema), and
    ``sqlite3.Error`` when SQLite fails.
    """
    db.execute(f"PRAGMA busy_timeout = {busy_timeout // timedelta(milliseconds=1):d}")
    mode = db.execute("PRAGMA journal_mode = WAL").fetchall()
    if not mode or str(mode[0][0]).lower() != "wal":
        raise StorageUnavailable(
            f"Cannot use WAL journal mode for the SQLite store at {file} "
            "(a network file system cannot share WAL memory between processes)."
        )
    # FULL: every COMMIT fsyncs the WAL before it returns. With NORMAL, a WAL commit survives
    # an application crash but may be lost on power loss or an OS crash, and a secret whose
    # link was already handed to the sender must not silently vanish.
    db.execute("PRAGMA synchronous = FULL")
    # Overwrite deleted rows and freed pages with zeros (see ``burnlink.store.sqlite.store``).
    secure = db.execute("PRAGMA secure_delete = ON").fetchall()
    if not secure or int(secure[0][0]) != 1:
        raise StorageUnavailable("This SQLite build cannot enable secure_delete.")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(db.execute("PRAGMA user_version").fetchall()[0][0])
        if version > SCHEMA_VERSION:
            raise StorageUnavailable(
                f"The SQLite store at {file} has schema version {version}, newer than this "
                f"burnlink supports ({SCHEMA_VERSION}); upgrade burnlink."
            )
        if version < SCHEMA_VERSION:
            if version:
                LOG.info("Migrating the SQLite store from schema %d to %d", version, SCHEMA_VERSION)
            for step in MIGRATIONS[version:]:
                for statement in step:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        db.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
