"""Suspicious patterns worth a person's attention, noticed as events happen.

``AlertRules.check`` looks at each audit event (and ``probe`` at each reveal of an id that
does not exist) and returns the alerts it raises. Counters live in the secret store
(``SecretStore.hit``), so every server process adds to the same ones.

=====================  =====================================================================
``failed_reveals``     one secret got ``BURNLINK_ALERT_FAILED_REVEALS`` failed reveals (wrong
                       key, passphrase or code, refused address) within the window
``not_found_probes``   one client asked for ``BURNLINK_ALERT_NOT_FOUND`` ids that do not
                       exist within the window (someone enumerating ids)
``denied_ip``          a reveal of a secret was refused by an address rule (first per secret
``denied_geo``         and hour), or by a country rule
``country_mismatch``   a secret was revealed from another country than the one it was
                       created from (both known)
=====================  =====================================================================

Each fires once when its count reaches the threshold, not again until the window turns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from burnlink.audit.events import AuditEvent, AuditEventType, Outcome, Scalar
from burnlink.config import Limit
from burnlink.events import ROUTES
from burnlink.service.rate_limits import client_key
from burnlink.store import SecretStore

__all__ = ["Alert", "AlertReason", "AlertRules"]

DENIAL_WINDOW: Final = 3600
"""Seconds within which only the first refusal of a secret by a rule raises an alert."""

_FAILURES: Final = frozenset(t for t, r in ROUTES.items() if r.failure)


class AlertReason(StrEnum):
    """Why an ``alert`` event was raised (its ``detail.reason``)."""

    FAILED_REVEALS = "failed_reveals"
    NOT_FOUND_PROBES = "not_found_probes"
    DENIED_IP = "denied_ip"
    DENIED_GEO = "denied_geo"
    COUNTRY_MISMATCH = "country_mismatch"
    UNREADABLE_EVENT = "unreadable_event"
    """An outbox record did not parse and was sealed as this alert (``audit.sealer``)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert to raise: why, and small facts for its ``detail``."""

    reason: AlertReason
    facts: Mapping[str, Scalar]

    def detail(self) -> dict[str, Scalar]:
        """The ``detail`` of the alert event."""
        return {"reason": self.reason.value, **self.facts}


class AlertRules:
    """The rules of the module docstring, counting in ``store``."""

    def __init__(
        self, store: SecretStore, *, failed_reveals: Limit | None, not_found: Limit | None
    ) -> None:
        """``None`` switches a counted rule off."""
        self.store = store
        self.failed_reveals = failed_reveals
        self.not_found = not_found

    async def check(
        self, event: AuditEvent, secret_id: str | None, *, creator_country: str | None = None
    ) -> list[Alert]:
        """The alerts ``event`` (about ``secret_id``) raises. Raises ``StorageError``."""
        alerts: list[Alert] = []
        now = event.at
        if secret_id is None:
            return alerts
        if event.type in _FAILURES and self.failed_reveals is not None:
            limit = self.failed_reveals
            count = await self._count(f"alert:failed:{secret_id}", limit.window, now)
            if count == limit.count:
                alerts.append(
                    Alert(AlertReason.FAILED_REVEALS, {"count": count, "window": limit.window})
                )
        denial = {
            AuditEventType.ACCESS_DENIED_IP: AlertReason.DENIED_IP,
            AuditEventType.ACCESS_DENIED_GEO: AlertReason.DENIED_GEO,
        }.get(event.type)
        if denial is not None:
            count = await self._count(f"alert:{denial.value}:{secret_id}", DENIAL_WINDOW, now)
            if count == 1:
                alerts.append(Alert(denial, {"rule": event.policy.get("rule")}))
        if (
            event.type is AuditEventType.SECRET_VIEWED
            and event.outcome is Outcome.OK
            and creator_country is not None
            and event.country is not None
            and creator_country != event.country
        ):
            alerts.append(Alert(AlertReason.COUNTRY_MISMATCH, {"creator_country": creator_country}))
        return alerts

    async def probe(self, client_ip: str | None, *, now: datetime) -> Alert | None:
        """Count a reveal of an id that does not exist; the alert when it is one too many."""
        if self.not_found is None:
            return None
        limit = self.not_found
        count = await self._count(f"alert:probe:{client_key(client_ip)}", limit.window, now)
        if count != limit.count:
            return None
        return Alert(AlertReason.NOT_FOUND_PROBES, {"count": count, "window": limit.window})

    async def _count(self, bucket: str, window: int, now: datetime) -> int:
        return await self.store.hit(bucket, window=window, now=now)
