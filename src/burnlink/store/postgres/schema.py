"""The PostgreSQL store's schema: its DDL, version by version, and the migration run on open.

``burnlink_schema_version`` holds one row per schema version applied; the highest is the one in
place. ``create_schema`` runs inside one transaction that first takes ``pg_advisory_xact_lock``,
so several processes opening one database together never race on the DDL: the first applies
every missing step and records the new version, the others then find it and do nothing. A
database newer than this module is refused. Every statement is idempotent (``IF NOT EXISTS``),
so a half-emptied database (tables truncated, version row gone) is repaired, not broken.

Versions
--------
1. ``burnlink_secrets`` (live secrets), ``burnlink_receipts`` (one per secret, kept until
   ``keep_until``) and ``burnlink_events`` (a receipt's history, ``ON DELETE CASCADE``).
2. Access rules: ``burnlink_secrets.policy`` (``AccessPolicy.to_bytes()``; ``NULL`` on rows
   written before it, read back as the empty policy), ``burnlink_codes`` (at most one one-time
   code per secret, deleted with it by ``ON DELETE CASCADE``) and ``burnlink_counters`` (fixed
   rate-limit windows keyed by bucket and window start, indexed on the window end for the
   sweep).

3. ``burnlink_codes.sent``: how many codes were put since the last match (``put_code``'s
   ``max_codes``); a used-up or expired code now stays until a match or the end of its secret.
4. ``burnlink_outbox``: the events recorded with each change, waiting for the sealer
   (``audit.outbox``), one row per record: ``ref`` (``bigserial``, the order they were taken
   in) and ``record`` (the record's bytes, as given).
5. ``burnlink_codes`` renamed ``burnlink_recipient_codes``: a process of an earlier release
   that is still running fails on every code (503) instead of deleting used-up codes.
6. Sign-in: ``burnlink_receipts.owner`` and ``.label`` (copied from the secret, kept with the
   receipt) with a partial index on ``(owner, created_at, id)``; ``burnlink_sessions`` (by the
   session id's digest, indexed on the subject and on ``expires_at``) and
   ``burnlink_api_tokens`` (by ``token_id``, the digest unique, ``keep_until`` indexed).
7. ``burnlink_receipts.owner_email``: the owner's email as it was at the create, kept with the
   receipt so that every receipt names its creator.
8. ``burnlink_events.viewer_email`` and ``.viewer_mfa``: the signed-in recipient a receipt
   line was made for (``viewer_mfa`` ``NULL``: none).
9. ``burnlink_requests``: requests for a secret (``store/requests.py``), with a partial index
   on the ``expires_at`` of open ones (the sweep) and one on ``keep_until``. The answer is the
   secret of the same id.

Moving a version-1 database to version 2 adds a nullable column without a default, which
PostgreSQL records in the catalogue without rewriting the table (the ``ALTER`` still takes a
brief exclusive lock on ``burnlink_secrets``), and two new tables. Processes of the previous
release keep working against the migrated database: they never name the new column or tables,
and their secrets read back with the empty policy. Version 3 adds a column with a constant
default (also catalogue-only); the previous release's inserts get ``sent = 1``. Version 4
only adds a table; the previous release never names it, so its processes keep working, but
the events of the changes they make reach no outbox (they wrote them to the audit log
themselves): upgrade every process together. Version 5 renames the codes table, so that those
processes (which delete a used-up code, and with it the time it was put, letting the next be
mailed at once) fail on every code, answering 503, until they are replaced; everything else
they do keeps working. Version 6 adds two nullable columns (catalogue-only), an index and two
tables; the previous release never names them, and its secrets' receipts simply carry no
owner. Version 7 adds one nullable column (catalogue-only); the previous release never names
it, and the receipts its processes write carry no owner's email. Version 8 adds two nullable
columns (catalogue-only); the previous release never names them, and the lines its processes
write name no viewer. A process started from an earlier release refuses the database.
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg.rows import TupleRow

from burnlink.errors import StorageUnavailable

__all__ = ["MIGRATIONS", "SCHEMA_LOCK", "SCHEMA_VERSION", "create_schema"]

SCHEMA_VERSION: Final = 9
"""The schema this module creates and expects."""

SCHEMA_LOCK: Final = 0x6275726E6C696E6B  # "burnlink": the advisory lock that guards the DDL

_SCHEMA_V1: Final = (
    """
    CREATE TABLE IF NOT EXISTS burnlink_secrets (
        id text PRIMARY KEY,
        envelope bytea NOT NULL,
        access_digest bytea NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        max_views integer NOT NULL,
        views_left integer NOT NULL,
        attempts_left integer NOT NULL,
        passphrase_kdf text,
        passphrase_iterations integer,
        passphrase_salt bytea,
        passphrase_proof_digest bytea,
        owner text,
        CONSTRAINT burnlink_secrets_passphrase_complete CHECK (
            (passphrase_kdf IS NULL) = (passphrase_iterations IS NULL)
            AND (passphrase_kdf IS NULL) = (passphrase_salt IS NULL)
            AND (passphrase_kdf IS NULL) = (passphrase_proof_digest IS NULL)
        )
    )
    """,
    "CREATE INDEX IF NOT EXISTS burnlink_secrets_expires_at ON burnlink_secrets (expires_at)",
    """
    CREATE TABLE IF NOT EXISTS burnlink_receipts (
        id text PRIMARY KEY,
        manage_digest bytea NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        max_views integer NOT NULL,
        views_used integer NOT NULL DEFAULT 0,
        ended_at timestamptz,
        end_reason text,
        keep_until timestamptz NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS burnlink_receipts_keep_until ON burnlink_receipts (keep_until)",
    """
    CREATE TABLE IF NOT EXISTS burnlink_events (
        receipt_id text NOT NULL REFERENCES burnlink_receipts (id) ON DELETE CASCADE,
        seq bigserial,
        at timestamptz NOT NULL,
        kind text NOT NULL,
        ip text,
        user_agent text,
        PRIMARY KEY (receipt_id, seq)
    )
    """,
)

_SCHEMA_V2: Final = (
    "ALTER TABLE burnlink_secrets ADD COLUMN IF NOT EXISTS policy bytea",
    """
    CREATE TABLE IF NOT EXISTS burnlink_codes (
        secret_id text PRIMARY KEY REFERENCES burnlink_secrets (id) ON DELETE CASCADE,
        digest bytea NOT NULL,
        put_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        tries_left integer NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS burnlink_counters (
        bucket text NOT NULL,
        window_start bigint NOT NULL,
        ends_at timestamptz NOT NULL,
        hits bigint NOT NULL,
        PRIMARY KEY (bucket, window_start)
    )
    """,
    "CREATE INDEX IF NOT EXISTS burnlink_counters_ends_at ON burnlink_counters (ends_at)",
)

_SCHEMA_V3: Final = (
    "ALTER TABLE burnlink_codes ADD COLUMN IF NOT EXISTS sent integer NOT NULL DEFAULT 1",
)

_SCHEMA_V4: Final = (
    """
    CREATE TABLE IF NOT EXISTS burnlink_outbox (
        ref bigserial PRIMARY KEY,
        record bytea NOT NULL
    )
    """,
)

# Renamed, not altered: a process of an earlier release still running during a rolling upgrade
# then fails (503) on every code instead of deleting used-up codes. A database repaired after
# its version rows were lost has both tables (steps 2 and 3 made the old one again, empty):
# the old one goes.
_SCHEMA_V5: Final = (
    """
    DO $$
    BEGIN
        IF to_regclass('burnlink_recipient_codes') IS NULL THEN
            ALTER TABLE IF EXISTS burnlink_codes RENAME TO burnlink_recipient_codes;
        ELSE
            DROP TABLE IF EXISTS burnlink_codes;
        END IF;
    END
    $$
    """,
)

_SCHEMA_V6: Final = (
    "ALTER TABLE burnlink_receipts ADD COLUMN IF NOT EXISTS owner text",
    "ALTER TABLE burnlink_receipts ADD COLUMN IF NOT EXISTS label text",
    # Secrets of earlier releases were created without an owner; the copy covers any that had.
    """
    UPDATE burnlink_receipts AS r SET owner = s.owner
    FROM burnlink_secrets AS s
    WHERE s.id = r.id AND s.owner IS NOT NULL AND r.owner IS NULL
    """,
    """
    CREATE INDEX IF NOT EXISTS burnlink_receipts_owner
    ON burnlink_receipts (owner, created_at DESC, id DESC) WHERE owner IS NOT NULL
    """,
    """
    CREATE TABLE IF NOT EXISTS burnlink_sessions (
        digest bytea PRIMARY KEY,
        subject text NOT NULL,
        email text,
        groups text[] NOT NULL,
        mfa boolean NOT NULL,
        auth_time timestamptz NOT NULL,
        created_at timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS burnlink_sessions_subject ON burnlink_sessions (subject)",
    "CREATE INDEX IF NOT EXISTS burnlink_sessions_expires_at ON burnlink_sessions (expires_at)",
    """
    CREATE TABLE IF NOT EXISTS burnlink_api_tokens (
        token_id text PRIMARY KEY,
        digest bytea NOT NULL UNIQUE,
        subject text NOT NULL,
        email text,
        groups text[] NOT NULL,
        name text NOT NULL,
        scopes text[] NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        last_used timestamptz,
        revoked_at timestamptz,
        keep_until timestamptz NOT NULL
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS burnlink_api_tokens_subject
    ON burnlink_api_tokens (subject, created_at DESC)
    """,
    """
    CREATE INDEX IF NOT EXISTS burnlink_api_tokens_keep_until
    ON burnlink_api_tokens (keep_until)
    """,
)

# Nullable and without a default: a process of the release before, still running during a
# rolling upgrade, inserts receipts without it.
_SCHEMA_V7: Final = ("ALTER TABLE burnlink_receipts ADD COLUMN IF NOT EXISTS owner_email text",)

# Nullable and without a default: a process of the release before, still running during a
# rolling upgrade, inserts receipt lines without them (``viewer_mfa`` NULL: no viewer).
_SCHEMA_V8: Final = (
    "ALTER TABLE burnlink_events ADD COLUMN IF NOT EXISTS viewer_email text",
    "ALTER TABLE burnlink_events ADD COLUMN IF NOT EXISTS viewer_mfa boolean",
)

_SCHEMA_V9: Final = (
    """
    CREATE TABLE IF NOT EXISTS burnlink_requests (
        id text PRIMARY KEY,
        requester_digest bytea NOT NULL,
        answer_digest bytea NOT NULL,
        public_key bytea NOT NULL,
        description text NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        answer_ttl integer NOT NULL,
        answer_views integer NOT NULL,
        recipients text[] NOT NULL,
        notify_url text,
        notify_email text,
        owner text,
        owner_email text,
        state text NOT NULL CHECK (state IN ('open', 'answered', 'expired')),
        answered_at timestamptz,
        keep_until timestamptz NOT NULL
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS burnlink_requests_open
    ON burnlink_requests (expires_at) WHERE state = 'open'
    """,
    """
    CREATE INDEX IF NOT EXISTS burnlink_requests_keep_until
    ON burnlink_requests (keep_until)
    """,
)

MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (1, _SCHEMA_V1),
    (2, _SCHEMA_V2),
    (3, _SCHEMA_V3),
    (4, _SCHEMA_V4),
    (5, _SCHEMA_V5),
    (6, _SCHEMA_V6),
    (7, _SCHEMA_V7),
    (8, _SCHEMA_V8),
    (9, _SCHEMA_V9),
)
"""Each version with the statements that bring the previous one to it, oldest first."""


async def create_schema(conn: psycopg.AsyncConnection[TupleRow]) -> None:
    """Create the schema, or migrate it forward, in one transaction under the advisory lock.

    Raises ``StorageUnavailable`` if the database was made by a newer burnlink.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS burnlink_schema_version (version integer PRIMARY KEY)"
        )
        cursor = await conn.execute("SELECT max(version) FROM burnlink_schema_version")
        row = await cursor.fetchone()
        version = 0 if row is None or row[0] is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise StorageUnavailable(
                "The database schema is newer than this version of burnlink; upgrade burnlink."
            )
        if version == SCHEMA_VERSION:
            return
        for target, statements in MIGRATIONS:
            if version < target:
                for statement in statements:
                    await conn.execute(statement)
        await conn.execute(
            "INSERT INTO burnlink_schema_version (version) VALUES (%s) ON CONFLICT DO NOTHING",
            (SCHEMA_VERSION,),
        )
