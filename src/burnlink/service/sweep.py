"""The sweep: what happens to secrets whose time ran out, on a fixed beat.

Correctness never depends on it (every read checks expiry); it frees space and, on SQLite,
checkpoints the WAL so no deleted ciphertext lingers there. ``run_sweeper`` calls ``sweep``
every ``BURNLINK_SWEEP_INTERVAL`` seconds: the store deletes expired secrets and stale
receipts; then each expiry the audit's expiry watch (``audit.watch``) holds is recorded as a
``secret.expired`` event and sent to the secret's ``notify_url``; requests past their expiry
are closed with ``request.expired`` and dropped after retention; then audit entries older
than ``BURNLINK_AUDIT_DAYS`` are dropped.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Final, Protocol

import anyio

from burnlink.audit import Watched
from burnlink.audit.events import AuditEventType, format_time
from burnlink.clock import Clock
from burnlink.config import Settings
from burnlink.errors import AuditUnavailable, StorageError
from burnlink.metrics import StoreName
from burnlink.models import EndReason
from burnlink.service.reporting import Reporter
from burnlink.store import SecretStore

__all__ = ["SWEEP_BATCH", "Sweeping", "expire_requests", "run_sweeper", "sweep"]

log = logging.getLogger("burnlink.sweeper")

SWEEP_BATCH: Final = 500


async def sweep(store: SecretStore, reporter: Reporter, settings: Settings, clock: Clock) -> int:
    """One sweep (see the module docstring); return how many secrets the store deleted.

    Raises ``StorageError`` when a store fails; what was not done is retried next time.
    """
    total = 0
    while True:
        purged = await store.purge_expired(now=clock.now(), limit=SWEEP_BATCH)
        total += purged
        if purged < SWEEP_BATCH:
            break
    await record_expiries(store, reporter, clock)
    await expire_requests(store, reporter, clock)
    if settings.audit_days:
        now = clock.now()
        cutoff = now - timedelta(days=settings.audit_days)
        await reporter.purge(cutoff, at=now, batch=SWEEP_BATCH)
    return total


async def record_expiries(store: SecretStore, reporter: Reporter, clock: Clock) -> int:
    """Record every due expiry of the watch; return how many were recorded.

    Seals the outbox first: a secret's watch row is written when its ``secret.created`` is
    sealed, so a watch not sealed yet would miss an expiry that is due.
    """
    try:
        await reporter.sealer.drain()
    except StorageError:
        raise AuditUnavailable from None
    recorded = 0
    while True:
        now = clock.now()
        due = await reporter.claim_due(now=now, limit=SWEEP_BATCH)
        for done, item in enumerate(due):
            try:
                recorded += await _expired(store, reporter, item, now)
            except StorageError:
                # Put back what was claimed but not recorded: the next sweep retries it.
                with suppress(StorageError):
                    for rest in due[done:]:
                        await reporter.watch(rest)
                raise
        if len(due) < SWEEP_BATCH:
            return recorded


async def _expired(store: SecretStore, reporter: Reporter, item: Watched, now: datetime) -> int:
    receipt = await store.receipt(item.secret_id, now=now)
    if receipt is not None and receipt.end_reason not in (None, EndReason.EXPIRED):
        return 0  # it ended another way (its watch is only cleared when its event is sealed)
    event, recorded = reporter.happened(
        AuditEventType.SECRET_EXPIRED,
        at=now,
        secret_id=item.secret_id,
        detail={"expires_at": format_time(item.expires_at)},
    )
    await store.record(item.secret_id, [recorded])
    reporter.recorded()
    await reporter.publish(event, secret_id=item.secret_id, notify_url=item.notify_url)
    return 1


async def expire_requests(store: SecretStore, reporter: Reporter, clock: Clock) -> int:
    """Close every open request past its expiry with its ``request.expired`` event (each
    once, whichever process gets there first), then drop requests past retention; return how
    many expired."""
    expired = 0
    while True:
        now = clock.now()
        due = await store.due_requests(now=now, limit=SWEEP_BATCH)
        for request_id in due:
            event, recorded = reporter.happened(
                AuditEventType.REQUEST_EXPIRED, at=now, secret_id=request_id
            )
            if await store.expire_request(request_id, now=now, events=[recorded]):
                expired += 1
                reporter.recorded()
                await reporter.publish(event, secret_id=request_id)
        if len(due) < SWEEP_BATCH:
            break
    while await store.purge_requests(now=clock.now(), limit=SWEEP_BATCH) >= SWEEP_BATCH:
        pass
    return expired


class Sweeping(Protocol):
    """What ``run_sweeper`` drives (``SecretService``)."""

    reporter: Reporter

    async def sweep(self) -> int:
        """One sweep; how many secrets went."""
        ...


async def run_sweeper(service: Sweeping, interval: float) -> None:
    """Sweep every ``interval`` seconds until cancelled; a failing store is retried next beat."""
    while True:
        try:
            purged = await service.sweep()
        except StorageError as exc:
            if not isinstance(exc, AuditUnavailable):  # the reporter counted those
                service.reporter.metrics.store_error(StoreName.SECRETS)
            log.warning("sweep failed: %s", type(exc).__name__)
        else:
            if purged:
                log.info("swept %d expired secrets", purged)
        await anyio.sleep(interval)
