"""Statement parameters the PostgreSQL store's modules share: the events kept with a change
(``sql._keep``'s arrays) and a secret's insert (a create, and a request's answer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from burnlink.models import SecretRecord
from burnlink.store.postgres.arrays import (
    BooleanArray,
    ByteaArray,
    TextArray,
    TimestamptzArray,
)
from burnlink.store.secrets import MAX_EVENTS_PER_KIND, Recorded

__all__ = ["events_params", "secret_params"]


def events_params(events: Sequence[Recorded]) -> dict[str, object]:
    """``events`` as the array parameters of ``sql._keep``: the receipt lines column by
    column, the outbox records as they are."""
    lines = [recorded.line for recorded in events if recorded.line is not None]
    return {
        "line_at": TimestamptzArray(line.at for line in lines),
        "line_kind": TextArray(line.kind.value for line in lines),
        "line_ip": TextArray(line.ip for line in lines),
        "line_agent": TextArray(line.user_agent for line in lines),
        "line_viewer_email": TextArray(
            None if line.viewer is None else line.viewer.email for line in lines
        ),
        "line_viewer_mfa": BooleanArray(
            None if line.viewer is None else line.viewer.mfa for line in lines
        ),
        "outbox": ByteaArray(recorded.outbox for recorded in events),
        "cap": MAX_EVENTS_PER_KIND,
    }


def secret_params(
    record: SecretRecord, events: Sequence[Recorded], retention: timedelta
) -> dict[str, Any]:
    """The parameters of a secret's insert (its row, receipt and ``events``), shared by a
    create and a request's answer."""
    gate = record.passphrase
    return {
        "id": record.secret_id,
        "envelope": record.envelope,
        "access_digest": record.access_digest,
        "manage_digest": record.manage_digest,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "keep_until": record.expires_at + retention,
        "max_views": record.max_views,
        "max_attempts": record.max_attempts,
        "kdf": gate.kdf if gate else None,
        "iterations": gate.iterations if gate else None,
        "salt": gate.salt if gate else None,
        "proof_digest": gate.proof_digest if gate else None,
        "owner": record.owner,
        "owner_email": record.owner_email,
        "label": record.label,
        "policy": record.policy.to_bytes(),
        **events_params(events),
    }
