"""The SQL statements of the PostgreSQL store (``burnlink.store.postgres.store``), one per atomic
rule; the tables are in ``burnlink.store.postgres.schema``, the create and the reveal in
``burnlink.store.postgres.procedures``.

Every statement takes the application's ``now`` as a parameter and checks
``expires_at > now`` itself; none reads the server's clock.

A statement that changes a secret also keeps the events of that change (``store.secrets.Recorded``)
through the two common table expressions of ``_keep``, only when its change happened: the
events travel as array parameters (``_keep``'s docstring names them) in the same statement,
never in a round trip of their own.
"""

# The f-strings below join constant fragments of this module (``_keep``), never a value:
# values always travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

from typing import Final


def _keep(lines_for: str, outbox_if: str) -> str:
    """The CTEs ``kept_lines`` and ``kept_outbox``: insert the receipt lines for each row
    (``id``) of ``lines_for``, at most ``%(cap)s`` of each kind on a receipt, and the outbox
    records if ``outbox_if`` holds, each in the order given.

    Parameters: ``line_at``, ``line_kind``, ``line_ip``, ``line_agent``, ``line_viewer_email``,
    ``line_viewer_mfa`` (one element per line) and ``outbox`` (``bytea[]``, one per record).
    The ``ORDER BY`` keeps the ``bigserial``s in that order (the defaults are computed above
    the sort). The count of a kind already on
    the receipt is read in the statement's snapshot: a concurrent statement's lines are not
    seen (see ``PostgresStore.consume``).
    """
    return f"""
kept_lines AS (
    INSERT INTO burnlink_events (receipt_id, at, kind, ip, user_agent, viewer_email, viewer_mfa)
    SELECT src.id, l.at, l.kind, l.ip, l.agent, l.viewer_email, l.viewer_mfa
    FROM {lines_for} AS src,
         (SELECT u.*, row_number() OVER (PARTITION BY u.kind ORDER BY u.n) AS nth
          FROM unnest(%(line_at)s::timestamptz[], %(line_kind)s::text[], %(line_ip)s::text[],
                      %(line_agent)s::text[], %(line_viewer_email)s::text[],
                      %(line_viewer_mfa)s::boolean[])
               WITH ORDINALITY AS u (at, kind, ip, agent, viewer_email, viewer_mfa, n)
         ) AS l
    WHERE (SELECT count(*) FROM burnlink_events AS e
           WHERE e.receipt_id = src.id AND e.kind = l.kind) + l.nth <= %(cap)s
    ORDER BY l.n
), kept_outbox AS (
    INSERT INTO burnlink_outbox (record)
    SELECT o.record FROM unnest(%(outbox)s::bytea[]) WITH ORDINALITY AS o (record, n)
    WHERE {outbox_if}
    ORDER BY o.n
)"""


INSERT_ENVELOPE_ROW: Final = """
    INSERT INTO burnlink_secrets
        (id, envelope, access_digest, created_at, expires_at, max_views, views_left,
         attempts_left, passphrase_kdf, passphrase_iterations, passphrase_salt,
         passphrase_proof_digest, owner, policy)
    SELECT receipt.id, %(envelope)s, %(access_digest)s, %(created_at)s, %(expires_at)s,
           %(max_views)s, %(max_views)s, %(max_attempts)s, %(kdf)s, %(iterations)s, %(salt)s,
           %(proof_digest)s, %(owner)s, %(policy)s
    FROM receipt
"""
"""The insert of a secret's row (``secret_params``) for the receipt in the CTE ``receipt``."""

PEEK: Final = """
SELECT access_digest, created_at, expires_at, max_views, views_left, attempts_left,
       passphrase_kdf, passphrase_iterations, passphrase_salt, passphrase_proof_digest, policy
FROM burnlink_secrets
WHERE id = %(id)s AND expires_at > %(now)s
"""

CONSUME: Final = f"""
WITH taken AS (
    UPDATE burnlink_secrets
    SET views_left = views_left - 1
    WHERE id = %(id)s AND access_digest = %(access_digest)s AND expires_at > %(now)s
      AND views_left > 0
    RETURNING id, envelope, views_left
), counted AS (
    UPDATE burnlink_receipts AS r
    SET views_used = r.views_used + 1,
        ended_at = CASE WHEN taken.views_left = 0 THEN %(now)s ELSE r.ended_at END,
        end_reason = CASE WHEN taken.views_left = 0 THEN 'viewed' ELSE r.end_reason END,
        keep_until = CASE WHEN taken.views_left = 0 THEN %(keep_until)s ELSE r.keep_until END
    FROM taken
    WHERE r.id = taken.id
), {_keep("taken", "EXISTS (SELECT 1 FROM taken)")}
SELECT envelope, views_left FROM taken
"""

DELETE_VIEWED: Final = "DELETE FROM burnlink_secrets WHERE id = %(id)s AND views_left = 0"

LOCK_ATTEMPTS: Final = """
SELECT attempts_left FROM burnlink_secrets
WHERE id = %(id)s AND expires_at > %(now)s
FOR UPDATE
"""

RECORD_FAILURE: Final = f"""
WITH failed AS (
    UPDATE burnlink_secrets
    SET attempts_left = attempts_left - 1
    WHERE id = %(id)s AND expires_at > %(now)s
    RETURNING id, attempts_left
), locked AS (
    UPDATE burnlink_receipts AS r
    SET ended_at = %(now)s, end_reason = 'locked', keep_until = %(keep_until)s
    FROM failed
    WHERE r.id = failed.id AND failed.attempts_left = 0
), {_keep("failed", "EXISTS (SELECT 1 FROM failed)")}
SELECT attempts_left FROM failed
"""

DELETE_LOCKED: Final = "DELETE FROM burnlink_secrets WHERE id = %(id)s AND attempts_left = 0"

BURN: Final = f"""
WITH gone AS (
    DELETE FROM burnlink_secrets
    WHERE id = %(id)s AND expires_at > %(now)s
    RETURNING id
), burned AS (
    UPDATE burnlink_receipts AS r
    SET ended_at = %(now)s, end_reason = %(reason)s, keep_until = %(keep_until)s
    FROM gone
    WHERE r.id = gone.id
), {_keep("gone", "EXISTS (SELECT 1 FROM gone)")}
SELECT count(*) FROM gone
"""

RECEIPT: Final = """
SELECT r.id, r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used,
       r.ended_at, r.end_reason, r.owner, r.label, r.owner_email, e.at, e.kind, e.ip,
       e.user_agent, e.viewer_email, e.viewer_mfa
FROM burnlink_receipts AS r
LEFT JOIN burnlink_events AS e ON e.receipt_id = r.id
WHERE r.id = %(id)s AND r.keep_until > %(now)s
ORDER BY e.seq
"""

# The same columns for the kept receipts of one owner, newest first: the subquery walks the
# index burnlink_receipts_owner; one statement, so receipts and events agree.
OWNED: Final = """
SELECT r.id, r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used,
       r.ended_at, r.end_reason, r.owner, r.label, r.owner_email, e.at, e.kind, e.ip,
       e.user_agent, e.viewer_email, e.viewer_mfa
FROM burnlink_receipts AS r
LEFT JOIN burnlink_events AS e ON e.receipt_id = r.id
WHERE r.id IN (
    SELECT id FROM burnlink_receipts
    WHERE owner = %(owner)s AND keep_until > %(now)s
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
)
ORDER BY r.created_at DESC, r.id DESC, e.seq
"""

LOCK_RECEIPT: Final = "SELECT 1 FROM burnlink_receipts WHERE id = %(id)s FOR UPDATE"

RECORD: Final = f"""
WITH {_keep("(SELECT id FROM burnlink_receipts WHERE id = %(id)s)", "TRUE")}
SELECT 1
"""

PENDING_EVENTS: Final = "SELECT ref, record FROM burnlink_outbox ORDER BY ref LIMIT %(limit)s"

ACK_EVENTS: Final = "DELETE FROM burnlink_outbox WHERE ref = ANY(%(refs)s::bigint[])"

PURGE_EXPIRED: Final = """
WITH batch AS MATERIALIZED (
    SELECT id FROM burnlink_secrets
    WHERE expires_at <= %(now)s
    ORDER BY expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM burnlink_secrets AS s
    USING batch
    WHERE s.id = batch.id
    RETURNING s.id, s.expires_at
), ended AS (
    UPDATE burnlink_receipts AS r
    SET ended_at = gone.expires_at, end_reason = 'expired',
        keep_until = gone.expires_at + %(retention)s
    FROM gone
    WHERE r.id = gone.id AND r.end_reason IS NULL
)
SELECT count(*) FROM gone
"""

PURGE_RECEIPTS: Final = "DELETE FROM burnlink_receipts WHERE keep_until <= %(now)s"

PURGE_COUNTERS: Final = "DELETE FROM burnlink_counters WHERE ends_at <= %(now)s"

PURGE_SESSIONS: Final = "DELETE FROM burnlink_sessions WHERE expires_at <= %(now)s"

PURGE_TOKENS: Final = "DELETE FROM burnlink_api_tokens WHERE keep_until <= %(now)s"

PUT_CODE: Final = """
WITH live AS (
    SELECT id FROM burnlink_secrets
    WHERE id = %(id)s AND expires_at > %(now)s
    FOR KEY SHARE
)
INSERT INTO burnlink_recipient_codes AS c (secret_id, digest, put_at, expires_at, tries_left, sent)
SELECT live.id, %(digest)s, %(now)s, %(expires_at)s, %(tries)s, 1 FROM live
ON CONFLICT (secret_id) DO UPDATE
SET digest = excluded.digest, put_at = excluded.put_at, expires_at = excluded.expires_at,
    tries_left = excluded.tries_left, sent = c.sent + 1
WHERE c.put_at <= %(resend_after)s AND c.sent < %(max_codes)s
RETURNING c.secret_id
"""

WHY_NO_CODE: Final = """
SELECT c.put_at > %(resend_after)s OR (c.expires_at > %(now)s AND c.tries_left > 0)
FROM burnlink_secrets AS s JOIN burnlink_recipient_codes AS c ON c.secret_id = s.id
WHERE s.id = %(id)s AND s.expires_at > %(now)s
"""

CHECK_CODE: Final = """
UPDATE burnlink_recipient_codes AS c
SET tries_left = c.tries_left - CASE WHEN c.digest = %(digest)s THEN 0 ELSE 1 END
WHERE c.secret_id = %(id)s AND c.expires_at > %(now)s AND c.tries_left > 0
  AND EXISTS (
      SELECT 1 FROM burnlink_secrets AS s WHERE s.id = c.secret_id AND s.expires_at > %(now)s
  )
RETURNING c.digest = %(digest)s, c.tries_left
"""

DELETE_CODE: Final = "DELETE FROM burnlink_recipient_codes WHERE secret_id = %(id)s"

HIT: Final = """
INSERT INTO burnlink_counters AS k (bucket, window_start, ends_at, hits)
VALUES (%(bucket)s, %(start)s, %(ends_at)s, %(cost)s)
ON CONFLICT (bucket, window_start) DO UPDATE SET hits = k.hits + excluded.hits
RETURNING k.hits
"""

CLEAR_HITS: Final = """
DELETE FROM burnlink_counters WHERE bucket = %(bucket)s AND window_start = %(start)s
RETURNING hits
"""

READ_HITS: Final = """
SELECT hits FROM burnlink_counters WHERE bucket = %(bucket)s AND window_start = %(start)s
"""
