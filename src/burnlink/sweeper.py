"""The sweeper: removes expired secrets and stale receipts on a fixed beat.

Correctness never depends on it (every read checks expiry); it frees space and, on SQLite,
checkpoints the WAL so no deleted ciphertext lingers there. It also records each expiry in the
audit log (and sends its webhook) and drops audit entries past their retention
(``burnlink.endings``).
"""

from __future__ import annotations

import logging

import anyio

from burnlink.errors import AuditUnavailable, StorageError
from burnlink.metrics import StoreName
from burnlink.service import SecretService

log = logging.getLogger("burnlink.sweeper")


async def run_sweeper(service: SecretService, interval: float) -> None:
    """Sweep every ``interval`` seconds until cancelled; a failing store is retried next beat."""
    while True:
        try:
            purged = await service.sweep()
        except StorageError as exc:
            if not isinstance(exc, AuditUnavailable):  # the observer counted those
                service.observer.metrics.store_error(StoreName.SECRETS)
            log.warning("sweep failed: %s", type(exc).__name__)
        else:
            if purged:
                log.info("swept %d expired secrets", purged)
        await anyio.sleep(interval)
