"""Receipts: a secret's history (its receipt lines), which kinds its receipt no longer lists in
full, and the signed proof of burn it carries once the secret has ended. A line holds no secret
material by construction: it has a time, a kind, and who asked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burnlink.models import ClientInfo, EndReason, Event, EventKind, ReceiptRecord
from burnlink.signing import burn_statement, sign_statement
from burnlink.store import SecretStore
from burnlink.store.secrets import MAX_EVENTS_PER_KIND

MAX_USER_AGENT_CHARS = 256


def history_event(kind: EventKind, client: ClientInfo, at: datetime) -> Event:
    """The receipt's line for ``kind``, done by ``client`` at ``at``."""
    agent = client.user_agent[:MAX_USER_AGENT_CHARS] if client.user_agent else None
    return Event(at=at, kind=kind, ip=client.ip, user_agent=agent)


async def record(
    store: SecretStore, secret_id: str, kind: EventKind, client: ClientInfo, at: datetime
) -> None:
    """Append one event to the secret's receipt."""
    await store.add_event(secret_id, history_event(kind, client, at))


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
