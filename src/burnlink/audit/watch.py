"""Expiry watch: which live secrets will expire when, so their expiry can be audited.

A store's sweep deletes expired secrets and only counts them, and a secret's data (its
``notify_url`` among it) goes with it. So when a secret is created the service also writes a
small watch row (id, expiry, webhook URL) beside the audit log, in the same SQL database that
outlives secrets, and removes it when the secret ends another way (last view, burn, lockout).
The sweeper then ``claim_due``s the rows whose time has come: each is taken by exactly one
process (the rows are deleted as they are read, in one statement), audited as
``secret.expired`` and notified.

Both audit stores implement it (the ``ExpiryWatch`` Protocol in ``audit.backend``): the
``audit_watch`` table in SQLite, ``burnlink_audit_watch`` in PostgreSQL. Unlike the log
itself these rows are not append-only or chained: they are a to-do list, and the audit event
written from each is what counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from burnlink.redacted import Redacted

__all__ = ["Watched"]


class Watched(Redacted, frozen=True):
    """A live secret whose expiry is still to be recorded."""

    secret_id: str
    expires_at: datetime
    notify_url: str | None = None

    _HIDDEN: ClassVar[tuple[str, ...]] = ("notify_url",)
