"""How secrets end, after the fact: the sweep that records expiries, and the proof of burn.

``sweep`` is what the sweeper runs on each beat: the store deletes expired secrets and stale
receipts; then each expiry the audit's expiry watch (``audit.watch``) holds is recorded as a
``secret.expired`` event and sent to the secret's ``notify_url``; then audit entries older
than ``BURNLINK_AUDIT_DAYS`` are dropped. ``proof_of_burn`` signs the statement a receipt
carries once its secret has ended.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burnlink.audit import Watched
from burnlink.audit.events import AuditEventType, format_time
from burnlink.clock import Clock
from burnlink.config import Settings
from burnlink.errors import StorageError
from burnlink.models import EndReason, ReceiptRecord
from burnlink.observe import Observer
from burnlink.signing import burn_statement, sign_statement
from burnlink.store import SecretStore

__all__ = ["SWEEP_BATCH", "proof_of_burn", "sweep"]

SWEEP_BATCH: Final = 500


async def sweep(store: SecretStore, observer: Observer, settings: Settings, clock: Clock) -> int:
    """One sweep (see the module docstring); return how many secrets the store deleted.

    Raises ``StorageError`` when a store fails; what was not done is retried next time.
    """
    total = 0
    while True:
        purged = await store.purge_expired(now=clock.now(), limit=SWEEP_BATCH)
        total += purged
        if purged < SWEEP_BATCH:
            break
    await record_expiries(store, observer, clock)
    if settings.audit_days:
        now = clock.now()
        cutoff = now - timedelta(days=settings.audit_days)
        await observer.purge(cutoff, at=now, batch=SWEEP_BATCH)
    return total


async def record_expiries(store: SecretStore, observer: Observer, clock: Clock) -> int:
    """Record every due expiry of the watch; return how many were recorded."""
    recorded = 0
    while True:
        now = clock.now()
        due = await observer.claim_due(now=now, limit=SWEEP_BATCH)
        for done, item in enumerate(due):
            try:
                recorded += await _expired(store, observer, item, now)
            except StorageError:
                # Put back what was claimed but not recorded: the next sweep retries it.
                with suppress(StorageError):
                    for rest in due[done:]:
                        await observer.watch(rest)
                raise
        if len(due) < SWEEP_BATCH:
            return recorded


async def _expired(store: SecretStore, observer: Observer, item: Watched, now: datetime) -> int:
    receipt = await store.receipt(item.secret_id, now=now)
    if receipt is not None and receipt.end_reason not in (None, EndReason.EXPIRED):
        return 0  # it ended another way, and clearing its watch failed then
    event = await observer.record(
        AuditEventType.SECRET_EXPIRED,
        at=now,
        secret_id=item.secret_id,
        detail={"expires_at": format_time(item.expires_at)},
    )
    await observer.publish(event, secret_id=item.secret_id, notify_url=item.notify_url)
    return 1


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
