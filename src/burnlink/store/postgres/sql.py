"""The SQL statements of the PostgreSQL store (``burnlink.store.postgres.store``), one per atomic
rule; the tables are in ``burnlink.store.postgres.schema``.

Every statement takes the application's ``now`` as a parameter and checks
``expires_at > now`` itself; none reads the server's clock.
"""

from __future__ import annotations

from typing import Final

CREATE: Final = """
WITH receipt AS (
    INSERT INTO burnlink_receipts
        (id, manage_digest, created_at, expires_at, max_views, views_used, keep_until)
    VALUES (%(id)s, %(manage_digest)s, %(created_at)s, %(expires_at)s, %(max_views)s, 0,
            %(keep_until)s)
    RETURNING id
), first_event AS (
    INSERT INTO burnlink_events (receipt_id, at, kind, ip, user_agent)
    SELECT receipt.id, %(event_at)s, %(event_kind)s, %(event_ip)s, %(event_agent)s
    FROM receipt WHERE %(event_kind)s::text IS NOT NULL
)
INSERT INTO burnlink_secrets
    (id, envelope, access_digest, created_at, expires_at, max_views, views_left, attempts_left,
     passphrase_kdf, passphrase_iterations, passphrase_salt, passphrase_proof_digest, owner,
     policy)
SELECT receipt.id, %(envelope)s, %(access_digest)s, %(created_at)s, %(expires_at)s,
       %(max_views)s, %(max_views)s, %(max_attempts)s, %(kdf)s, %(iterations)s, %(salt)s,
       %(proof_digest)s, %(owner)s, %(policy)s
FROM receipt
"""

PEEK: Final = """
SELECT access_digest, created_at, expires_at, max_views, views_left, attempts_left,
       passphrase_kdf, passphrase_iterations, passphrase_salt, passphrase_proof_digest, policy
FROM burnlink_secrets
WHERE id = %(id)s AND expires_at > %(now)s
"""

CONSUME: Final = """
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
), logged AS (
    INSERT INTO burnlink_events (receipt_id, at, kind, ip, user_agent)
    SELECT taken.id, %(event_at)s, %(event_kind)s, %(event_ip)s, %(event_agent)s
    FROM taken
    WHERE %(event_kind)s::text IS NOT NULL
      AND (SELECT count(*) FROM burnlink_events
           WHERE receipt_id = %(id)s AND kind = %(event_kind)s::text) < %(cap)s
)
SELECT envelope, views_left FROM taken
"""

DELETE_VIEWED: Final = "DELETE FROM burnlink_secrets WHERE id = %(id)s AND views_left = 0"

LOCK_ATTEMPTS: Final = """
SELECT attempts_left FROM burnlink_secrets
WHERE id = %(id)s AND expires_at > %(now)s
FOR UPDATE
"""

RECORD_FAILURE: Final = """
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
)
SELECT attempts_left FROM failed
"""

DELETE_LOCKED: Final = "DELETE FROM burnlink_secrets WHERE id = %(id)s AND attempts_left = 0"

BURN: Final = """
WITH gone AS (
    DELETE FROM burnlink_secrets
    WHERE id = %(id)s AND expires_at > %(now)s
    RETURNING id
), burned AS (
    UPDATE burnlink_receipts AS r
    SET ended_at = %(now)s, end_reason = %(reason)s, keep_until = %(keep_until)s
    FROM gone
    WHERE r.id = gone.id
)
SELECT count(*) FROM gone
"""

RECEIPT: Final = """
SELECT r.manage_digest, r.created_at, r.expires_at, r.max_views, r.views_used, r.ended_at,
       r.end_reason, e.at, e.kind, e.ip, e.user_agent
FROM burnlink_receipts AS r
LEFT JOIN burnlink_events AS e ON e.receipt_id = r.id
WHERE r.id = %(id)s AND r.keep_until > %(now)s
ORDER BY e.seq
"""

LOCK_RECEIPT: Final = "SELECT 1 FROM burnlink_receipts WHERE id = %(id)s FOR UPDATE"

ADD_EVENT: Final = """
INSERT INTO burnlink_events (receipt_id, at, kind, ip, user_agent)
SELECT %(id)s, %(at)s, %(kind)s, %(ip)s, %(user_agent)s
WHERE (SELECT count(*) FROM burnlink_events WHERE receipt_id = %(id)s AND kind = %(kind)s)
    < %(cap)s
"""

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

PUT_CODE: Final = """
WITH live AS (
    SELECT id FROM burnlink_secrets
    WHERE id = %(id)s AND expires_at > %(now)s
    FOR KEY SHARE
)
INSERT INTO burnlink_codes AS c (secret_id, digest, put_at, expires_at, tries_left, sent)
SELECT live.id, %(digest)s, %(now)s, %(expires_at)s, %(tries)s, 1 FROM live
ON CONFLICT (secret_id) DO UPDATE
SET digest = excluded.digest, put_at = excluded.put_at, expires_at = excluded.expires_at,
    tries_left = excluded.tries_left, sent = c.sent + 1
WHERE c.put_at <= %(resend_after)s AND c.sent < %(max_codes)s
RETURNING c.secret_id
"""

WHY_NO_CODE: Final = """
SELECT c.put_at > %(resend_after)s OR (c.expires_at > %(now)s AND c.tries_left > 0)
FROM burnlink_secrets AS s JOIN burnlink_codes AS c ON c.secret_id = s.id
WHERE s.id = %(id)s AND s.expires_at > %(now)s
"""

CHECK_CODE: Final = """
UPDATE burnlink_codes AS c
SET tries_left = c.tries_left - CASE WHEN c.digest = %(digest)s THEN 0 ELSE 1 END
WHERE c.secret_id = %(id)s AND c.expires_at > %(now)s AND c.tries_left > 0
  AND EXISTS (
      SELECT 1 FROM burnlink_secrets AS s WHERE s.id = c.secret_id AND s.expires_at > %(now)s
  )
RETURNING c.digest = %(digest)s, c.tries_left
"""

DELETE_CODE: Final = "DELETE FROM burnlink_codes WHERE secret_id = %(id)s"

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
