"""Writing a secret's history (its receipt events). Holds no secret material by construction:
an event has a time, a kind, and who asked."""

from __future__ import annotations

from datetime import datetime

from burnlink.models import ClientInfo, Event, EventKind
from burnlink.store import SecretStore

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
