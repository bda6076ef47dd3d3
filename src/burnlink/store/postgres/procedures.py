"""The PostgreSQL store's procedures for a create and a reveal: each counts the request's rate
hits in a transaction of its own, committed at once, then makes its change in a second
transaction, all in one ``CALL`` (one round trip).

A counter's row stays locked by the upsert that adds to it until that transaction ends. When
the count and the change were one statement, every request counted in one bucket (every
request from one address) waited for the one before it to finish its whole change and to
flush its commit to disk: under load most of the database's busy connections were waiting on
that lock. Counted in a transaction of its own, the row is locked for the upsert alone, and
that transaction commits without waiting for the disk (``synchronous_commit`` off for it
alone): a database crash may forget the counts of its last moments, which lets a few requests
past a limit, never a secret or an event. The change commits durably, as every other.

The totals the first transaction answers are this request's positions, counted one after the
other under the row lock, so the limits hold exactly as before; the change is made only when
none is past its limit. A count stays when the change then fails (a taken id) or the
connection is cut between the two.

The bodies are PL/pgSQL made of short statements, each on one row by its key, rather than one
statement of many common table expressions over the array parameters: PostgreSQL sets up every
node of a statement's plan on each run, and for those long statements the set-up (sorts, window
functions, joins over one-row arrays) was about a fifth of the database's CPU per request
(``python -m bench.inproc --store postgres``'s database CPU; the note in docs/storage.md).
PL/pgSQL keeps each statement's plan for the session.

A parameter ``name`` of the store's is the procedure's argument ``p_name``; an answer is an
``INOUT`` argument ``a_name``. A procedure's name ends in a digest of its definition, so
processes of two releases sharing a database each call their own; ``create_procedures``
creates the ones this release calls when the store opens.
"""

# The f-strings below join constant fragments of this module (``_LINES``), never a value:
# values always travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from burnlink.store.postgres.pool import Connection
from burnlink.store.postgres.schema import SCHEMA_LOCK

__all__ = ["CREATE", "REVEAL", "Procedure", "create_procedures"]

_ARGUMENT: Final = re.compile(r"\b[pa]_\w+")

_COUNTING: Final = (
    ("count_buckets", "text[]"),
    ("count_starts", "bigint[]"),
    ("count_ends", "bigint[]"),
    ("count_costs", "bigint[]"),
    ("hit_buckets", "text[]"),
    ("hit_starts", "bigint[]"),
    ("hit_limits", "bigint[]"),
)
_EVENTS: Final = (
    ("line_at", "timestamptz[]"),
    ("line_kind", "text[]"),
    ("line_ip", "text[]"),
    ("line_agent", "text[]"),
    ("line_viewer_email", "text[]"),
    ("line_viewer_mfa", "boolean[]"),
    ("outbox", "bytea[]"),
    ("cap", "integer"),
)
_TOTALS: Final = ("hit_totals", "bigint[]")
"""The totals the count answered: the first answer of each procedure."""

_VARIABLES: Final = """
DECLARE
    i integer;
    j integer;
    v_hits bigint;
    v_counted bigint[] := '{}';
    v_over boolean := false;
    v_record bytea;
"""

_COUNT: Final = """
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR i IN 1 .. coalesce(cardinality(p_count_buckets), 0) LOOP
        INSERT INTO burnlink_counters AS k (bucket, window_start, ends_at, hits)
        VALUES (p_count_buckets[i], p_count_starts[i], to_timestamp(p_count_ends[i]),
                p_count_costs[i])
        ON CONFLICT (bucket, window_start) DO UPDATE SET hits = k.hits + excluded.hits
        RETURNING k.hits INTO v_hits;
        v_counted := v_counted || v_hits;
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(p_hit_buckets), 0) LOOP
        v_hits := NULL;
        FOR j IN 1 .. coalesce(cardinality(p_count_buckets), 0) LOOP
            IF p_count_buckets[j] = p_hit_buckets[i] AND p_count_starts[j] = p_hit_starts[i] THEN
                v_hits := v_counted[j];
                EXIT;
            END IF;
        END LOOP;
        IF v_hits IS NULL THEN
            SELECT hits INTO v_hits FROM burnlink_counters
            WHERE bucket = p_hit_buckets[i] AND window_start = p_hit_starts[i];
        END IF;
        v_hits := coalesce(v_hits, 0);
        p_hit_totals := p_hit_totals || v_hits;
        v_over := v_over OR (p_hit_limits[i] >= 0 AND v_hits > p_hit_limits[i]);
    END LOOP;
    COMMIT;
"""
"""Count the ``count_*`` costs (one element per counter, none twice; ``count_ends``: the
window's end in seconds since the epoch, for a row it creates) and answer in ``hit_totals``
each of the ``hit_*``'s total (one per hit, in order; the one counted here, else the one
stored), setting ``v_over`` when one is past its limit (``hit_limits``, -1 for none). Each
counted row is locked until the ``COMMIT``, so the totals are positions, as if the requests had
been counted one by one."""

_LINES: Final = """
    FOR i IN 1 .. coalesce(cardinality(p_line_kind), 0) LOOP
        INSERT INTO burnlink_events
            (receipt_id, at, kind, ip, user_agent, viewer_email, viewer_mfa)
        SELECT p_id, p_line_at[i], p_line_kind[i], p_line_ip[i], p_line_agent[i],
               p_line_viewer_email[i], p_line_viewer_mfa[i]
        WHERE (SELECT count(*) FROM burnlink_events AS e
               WHERE e.receipt_id = p_id AND e.kind = p_line_kind[i]) < p_cap;
    END LOOP;
"""
"""Keep the receipt lines (``line_*``, one element per line, in order) on ``p_id``'s receipt
while it has fewer than ``cap`` of their kind (each insert sees the ones before it); the
``bigserial`` keeps their order."""

_CREATE: Final = f"""
    IF v_over THEN
        RETURN;
    END IF;
    INSERT INTO burnlink_receipts
        (id, manage_digest, created_at, expires_at, max_views, views_used, keep_until, owner,
         label, owner_email)
    VALUES (p_id, p_manage_digest, p_created_at, p_expires_at, p_max_views, 0, p_keep_until,
            p_owner, p_label, p_owner_email);
{_LINES}
    FOREACH v_record IN ARRAY coalesce(p_outbox, '{{}}') LOOP
        INSERT INTO burnlink_outbox (record) VALUES (v_record);
    END LOOP;
    INSERT INTO burnlink_secrets
        (id, envelope, access_digest, created_at, expires_at, max_views, views_left,
         attempts_left, passphrase_kdf, passphrase_iterations, passphrase_salt,
         passphrase_proof_digest, owner, policy)
    VALUES (p_id, p_envelope, p_access_digest, p_created_at, p_expires_at, p_max_views,
            p_max_views, p_max_attempts, p_kdf, p_iterations, p_salt, p_proof_digest, p_owner,
            p_policy);
"""
"""Unless a total is past its limit, insert the receipt, its lines, the outbox records (in
order) and the secret; a taken id raises ``unique_violation``."""

_REVEAL: Final = f"""
    a_allowed := NOT v_over;
    IF v_over THEN
        RETURN;
    END IF;
    IF p_take THEN
        SELECT access_digest, created_at, expires_at, max_views, views_left, attempts_left,
               passphrase_kdf, passphrase_iterations, passphrase_salt,
               passphrase_proof_digest, policy
        INTO a_access_digest, a_created_at, a_expires_at, a_max_views, a_views_left,
             a_attempts_left, a_passphrase_kdf, a_passphrase_iterations, a_passphrase_salt,
             a_passphrase_proof_digest, a_policy
        FROM burnlink_secrets
        WHERE id = p_id AND access_digest = p_access_digest AND expires_at > p_now
          AND views_left > 0 AND passphrase_kdf IS NULL
          AND (policy IS NULL
               OR substring(policy FROM 1 FOR length(p_no_rules)) = p_no_rules)
        FOR UPDATE;
        IF FOUND THEN
            IF a_views_left > 1 THEN
                UPDATE burnlink_secrets SET views_left = views_left - 1 WHERE id = p_id
                RETURNING envelope, views_left INTO a_envelope, a_taken_views_left;
            ELSE
                DELETE FROM burnlink_secrets WHERE id = p_id
                RETURNING envelope, 0 INTO a_envelope, a_taken_views_left;
            END IF;
            UPDATE burnlink_receipts
            SET views_used = views_used + 1,
                ended_at = CASE WHEN a_taken_views_left = 0 THEN p_now ELSE ended_at END,
                end_reason = CASE WHEN a_taken_views_left = 0 THEN 'viewed' ELSE end_reason END,
                keep_until = CASE WHEN a_taken_views_left = 0 THEN p_keep_until
                                  ELSE keep_until END
            WHERE id = p_id;
{_LINES}
            INSERT INTO burnlink_outbox (record)
            VALUES (p_view_head || convert_to(a_max_views::text, 'UTF8') || p_view_tail);
            RETURN;
        END IF;
    END IF;
    SELECT access_digest, created_at, expires_at, max_views, views_left, attempts_left,
           passphrase_kdf, passphrase_iterations, passphrase_salt, passphrase_proof_digest,
           policy
    INTO a_access_digest, a_created_at, a_expires_at, a_max_views, a_views_left,
         a_attempts_left, a_passphrase_kdf, a_passphrase_iterations, a_passphrase_salt,
         a_passphrase_proof_digest, a_policy
    FROM burnlink_secrets
    WHERE id = p_id AND expires_at > p_now;
"""
"""Unless a total is past its limit, read the secret and, with ``take``, when it needs nothing
but its link (``access_digest`` right, no passphrase, no access rules: its policy starts with
``no_rules``), take a view under the row lock (``SELECT … FOR UPDATE``, which under READ
COMMITTED waits for a concurrent reader and then reads what it committed): the last view
deletes the row, an earlier one counts it down; then count the view on the receipt, keep its
line and its outbox record (``view_head``, the secret's ``max_views``, ``view_tail``).
Answers whether the totals allowed it, the secret's metadata as locked or read (before the
view) and the view taken (``NULL``s where there is none)."""


@dataclass(frozen=True)
class Procedure:
    """A procedure: its name, the DDL that makes it, and the ``CALL`` that runs it with the
    store's ``%(name)s`` parameters (cast to the types it declares)."""

    name: str
    definition: str
    call: str


def _procedure(
    stem: str,
    parameters: tuple[tuple[str, str], ...],
    change: str,
    answers: tuple[tuple[str, str], ...] = (),
) -> Procedure:
    """The procedure ``burnlink_<stem>_<digest>``: ``_COUNT`` committed without waiting for
    the disk, then ``change`` (which sets the ``answers``, if any)."""
    arguments = [f"p_{name} {kind}" for name, kind in parameters]
    arguments += [f"INOUT p_{_TOTALS[0]} {_TOTALS[1]}"]
    arguments += [f"INOUT a_{name} {kind}" for name, kind in answers]
    body = f"{_VARIABLES}BEGIN{_COUNT}{change}END\n"
    named = set(_ARGUMENT.findall(body))
    declared = {argument.split()[-2] for argument in arguments}
    if not named <= declared:  # pragma: no cover - a mistake in this module, caught on import
        raise AssertionError(f"{stem}: {sorted(named - declared)} not declared")
    signature = ", ".join(arguments)
    digest = hashlib.sha256(f"{signature}\n{body}".encode()).hexdigest()[:12]
    name = f"burnlink_{stem}_{digest}"
    definition = (
        f"CREATE OR REPLACE PROCEDURE {name}({signature})\n"
        f"LANGUAGE plpgsql AS $procedure${body}$procedure$"
    )
    values = [f"%({name})s::{kind}" for name, kind in parameters]
    values += [f"NULL::{kind}" for _, kind in (_TOTALS, *answers)]
    return Procedure(name, definition, f"CALL {name}({', '.join(values)})")


CREATE: Final = _procedure(
    "create",
    (
        *_COUNTING,
        ("id", "text"),
        ("envelope", "bytea"),
        ("access_digest", "bytea"),
        ("manage_digest", "bytea"),
        ("created_at", "timestamptz"),
        ("expires_at", "timestamptz"),
        ("keep_until", "timestamptz"),
        ("max_views", "integer"),
        ("max_attempts", "integer"),
        ("kdf", "text"),
        ("iterations", "integer"),
        ("salt", "bytea"),
        ("proof_digest", "bytea"),
        ("owner", "text"),
        ("owner_email", "text"),
        ("label", "text"),
        ("policy", "bytea"),
        *_EVENTS,
    ),
    _CREATE,
)
"""Count, then ``_CREATE``; answers the totals."""

REVEAL: Final = _procedure(
    "reveal",
    (
        *_COUNTING,
        ("id", "text"),
        ("access_digest", "bytea"),
        ("now", "timestamptz"),
        ("keep_until", "timestamptz"),
        ("take", "boolean"),
        ("no_rules", "bytea"),
        ("view_head", "bytea"),
        ("view_tail", "bytea"),
        *_EVENTS,
    ),
    _REVEAL,
    (
        ("allowed", "boolean"),
        ("access_digest", "bytea"),
        ("created_at", "timestamptz"),
        ("expires_at", "timestamptz"),
        ("max_views", "integer"),
        ("views_left", "integer"),
        ("attempts_left", "integer"),
        ("passphrase_kdf", "text"),
        ("passphrase_iterations", "integer"),
        ("passphrase_salt", "bytea"),
        ("passphrase_proof_digest", "bytea"),
        ("policy", "bytea"),
        ("envelope", "bytea"),
        ("taken_views_left", "integer"),
    ),
)
"""Count, then ``_REVEAL``; answers the totals, then ``_REVEAL``'s."""

PROCEDURES: Final = (CREATE, REVEAL)


async def create_procedures(conn: Connection) -> None:
    """Create the procedures this release calls, unless the database has them already; under
    the schema's advisory lock, so processes opening one database together never race."""
    names = [procedure.name for procedure in PROCEDURES]
    present = await conn.execute(
        "SELECT count(*) FROM pg_proc"
        " WHERE proname = ANY(%s) AND pronamespace = current_schema()::regnamespace",
        (names,),
    )
    row = await present.fetchone()
    if row is not None and row[0] == len(names):
        return
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for procedure in PROCEDURES:
            await conn.execute(procedure.definition)
