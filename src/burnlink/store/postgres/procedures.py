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

Each step is a statement of ``sql`` whose ``%(name)s`` parameters become the procedure's
``p_name`` arguments. A procedure's name ends in a digest of its definition, so processes of
two releases sharing a database each call their own; ``create_procedures`` creates the ones
this release calls when the store opens.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from burnlink.store.postgres import sql
from burnlink.store.postgres.pool import Connection
from burnlink.store.postgres.schema import SCHEMA_LOCK

__all__ = ["CREATE", "REVEAL", "Procedure", "create_procedures"]

_PARAMETER: Final = re.compile(r"%\((\w+)\)s")

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


@dataclass(frozen=True)
class Procedure:
    """A procedure: its name, the DDL that makes it, and the ``CALL`` that runs it with the
    ``%(name)s`` parameters of its statements (cast to the types it declares)."""

    name: str
    definition: str
    call: str


def _procedure(
    stem: str,
    parameters: tuple[tuple[str, str], ...],
    change: str,
    answers: tuple[tuple[str, str], ...] = (),
) -> Procedure:
    """The procedure ``burnlink_<stem>_<digest>``: ``sql.COUNT_HITS`` committed without waiting
    for the disk, then ``change`` (which puts its answers, if any, ``INTO`` the ``answers``)."""
    named = set(_PARAMETER.findall(sql.COUNT_HITS + change))
    declared = {name for name, _ in parameters} | {_TOTALS[0]}
    if named != declared:  # pragma: no cover - a mistake in this module, caught on import
        raise AssertionError(f"{stem}: parameters {sorted(named ^ declared)} do not match")
    into = f"\nINTO {', '.join('a_' + name for name, _ in answers)}" if answers else ""
    body = f"""
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    {sql.COUNT_HITS.strip()}
    INTO p_{_TOTALS[0]};
    COMMIT;
    {change.strip()}{into};
END
"""
    arguments = [f"p_{name} {kind}" for name, kind in parameters]
    arguments += [f"INOUT p_{_TOTALS[0]} {_TOTALS[1]}"]
    arguments += [f"INOUT a_{name} {kind}" for name, kind in answers]
    signature = ", ".join(arguments)
    digest = hashlib.sha256(f"{signature}\n{body}".encode()).hexdigest()[:12]
    name = f"burnlink_{stem}_{digest}"
    code = _PARAMETER.sub(r"p_\1", body)
    definition = (
        f"CREATE OR REPLACE PROCEDURE {name}({signature})\n"
        f"LANGUAGE plpgsql AS $procedure${code}$procedure$"
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
    sql.CREATE,
)
"""Count, then ``sql.CREATE``; answers the totals."""

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
    sql.REVEAL,
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
"""Count, then ``sql.REVEAL``; answers the totals, then ``sql.REVEAL``'s row."""

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
