"""The SQLite store's schema (``burnlink.store.sqlite``), as the ordered steps that build it.

``MIGRATIONS[n]`` takes a database file from schema version ``n`` to ``n + 1``: a new file runs
every step, an older one only the steps it lacks, so both end with the same tables. A step that
has shipped never changes; a schema change is a new step at the end, and ``SCHEMA_VERSION`` is
the number of steps. ``SqliteStore.open`` reads ``PRAGMA user_version`` and runs the missing
steps inside one ``BEGIN IMMEDIATE`` transaction (SQLite's DDL is transactional), so processes
that open an old file at the same time migrate it exactly once, and a failed step leaves the
file as it was.

Times are INTEGER milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

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

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2)
"""``MIGRATIONS[n]``: the statements that take a file from version ``n`` to ``n + 1``."""

SCHEMA_VERSION: Final = len(MIGRATIONS)
"""Stored in ``PRAGMA user_version``; a file with a higher number is refused."""
