"""Receipts: which kinds its receipt no longer lists in
full, and the signed proof of burn it carries once the secret has ended. Its lines are written
with the events they list (``service.reporting``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burnlink.models import EndReason, Event, EventKind, ReceiptRecord
from burnlink.signing import burn_statement, sign_statement
from burnlink.store.secrets import MAX_EVENTS_PER_KIND


def capped_kinds(events: Iterable[Event]) -> tuple[EventKind, ...]:
    """The kinds of which the store kept as many events as it keeps (``MAX_EVENTS_PER_KIND``):
    later ones of those kinds happened but are not listed. In ``EventKind`` order."""
    counts = Counter(event.kind for event in events)
    return tuple(kind for kind in EventKind if counts[kind] >= MAX_EVENTS_PER_KIND)


def proof_of_burn(
    record: ReceiptRecord, how: EndReason, key: Ed25519PrivateKey, *, issuer: str
) -> str:
    """The signed statement (``signing``) that ``record``'s secret ended, and how."""
    statement = burn_statement(
        record.secret_id,
        created_at=record.created_at,
        ended_at=record.ended_at or record.expires_at,
        how=how,
        issuer=issuer,
        key=key,
    )
    return sign_statement(statement, key)
