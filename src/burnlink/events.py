"""One event per action, and the one table that says what follows from each type.

An action is described once, as an ``AuditEvent`` (``audit.events``): what happened, to which
secret, when, from which client and agent class, with which outcome, rule and details. The
store records it with the change it describes (``audit.outbox``); everything else is
derived from it by ``ROUTES``, one row per type:

- ``receipt``: the line the secret's receipt lists (``EventKind``), if any;
- ``denied`` / ``ended``: the metric it counts (``burnlink_access_denied_total{reason}``,
  ``burnlink_secrets_ended_total{reason}``);
- ``notify``: whether the secret's ``notify_url`` is told;
- ``failure``: whether it counts as a failed reveal for the alert rules;
- ``verb``: how a webhook says it ("the secret … was viewed");
- ``webhook``: the webhook's ``type`` when it is not the event's own (``request.answered``
  is told as ``request.fulfilled``).

Request events (``request.*``) name the request, whose id is also its answer's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from burnlink.audit.events import AuditEventType as T
from burnlink.metrics import DeniedReason
from burnlink.models import EndReason, EventKind

__all__ = ["ROUTES", "Route", "route"]


@dataclass(frozen=True, slots=True)
class Route:
    """What follows from one type of event (see the module docstring)."""

    verb: str
    receipt: EventKind | None = None
    denied: DeniedReason | None = None
    ended: EndReason | None = None
    notify: bool = False
    failure: bool = False
    webhook: str | None = None


ROUTES: Final[Mapping[T, Route]] = MappingProxyType(
    {
        T.SECRET_CREATED: Route("was created", EventKind.CREATED),
        T.SECRET_OPENED: Route("was opened (link page, nothing revealed)", EventKind.OPENED),
        T.SECRET_VIEWED: Route("was viewed", EventKind.VIEWED, notify=True),
        T.PASSPHRASE_FAILED: Route(
            "got a wrong passphrase",
            EventKind.WRONG_PASSPHRASE,
            denied=DeniedReason.PASSPHRASE,
            failure=True,
        ),
        T.KEY_FAILED: Route("got a wrong link key", denied=DeniedReason.KEY, failure=True),
        T.OTP_SENT: Route("had a one-time code sent", EventKind.VERIFICATION_SENT),
        T.OTP_VERIFIED: Route("had its one-time code confirmed", EventKind.VERIFIED),
        T.OTP_FAILED: Route(
            "got a wrong one-time code",
            EventKind.VERIFICATION_FAILED,
            denied=DeniedReason.OTP,
            failure=True,
        ),
        T.ACCESS_DENIED_IP: Route(
            "was refused to a client address",
            EventKind.IP_DENIED,
            denied=DeniedReason.IP,
            failure=True,
        ),
        T.ACCESS_DENIED_GEO: Route(
            "was refused to a client country",
            EventKind.GEO_DENIED,
            denied=DeniedReason.GEO,
            failure=True,
        ),
        T.ACCESS_DENIED_IDENTITY: Route(
            "was refused to a signed-in user who is not one of its recipients",
            denied=DeniedReason.IDENTITY,
            failure=True,
        ),
        T.RATE_LIMITED: Route("was rate limited", denied=DeniedReason.RATE_LIMITED),
        T.ADMIN_DENIED: Route("was refused an admin request", denied=DeniedReason.ADMIN),
        T.SECRET_BURNED: Route(
            "was burned by its sender", EventKind.BURNED, ended=EndReason.BURNED, notify=True
        ),
        T.SECRET_LOCKED: Route(
            "was destroyed after too many failed attempts",
            EventKind.LOCKED,
            ended=EndReason.LOCKED,
            notify=True,
        ),
        T.SECRET_EXPIRED: Route("expired", ended=EndReason.EXPIRED, notify=True),
        T.ALERT: Route("raised an alert"),
        T.AUDIT_PURGED: Route("had old audit entries purged"),
        T.WEBHOOK_DROPPED: Route("had a webhook dropped"),
        T.SIGNED_IN: Route("signed in"),
        T.SIGNED_OUT: Route("signed out"),
        T.SIGN_IN_REFUSED: Route("was refused a sign-in"),
        T.TOKEN_CREATED: Route("made an API token"),
        T.TOKEN_REVOKED: Route("had an API token revoked"),
        T.REQUEST_CREATED: Route("was requested"),
        T.REQUEST_OPENED: Route("was opened by the answering side"),
        T.REQUEST_ANSWERED: Route("was answered", notify=True, webhook="request.fulfilled"),
        T.REQUEST_EXPIRED: Route("expired unanswered"),
    }
)


def route(type: T) -> Route:
    """The row of ``type``."""
    return ROUTES[type]
