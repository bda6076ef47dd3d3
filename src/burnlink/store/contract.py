"""The storage interface every backend implements, and the contract it must keep.

``SecretStore`` is composed of small Protocols split by concern: ``SecretRecords``
(``store/secrets.py``), ``EventOutbox`` (``store/outbox.py``), ``Counters``
(``store/counters.py``), ``Codes`` (``store/codes.py``), and for sign-in ``Sessions``,
``ApiTokens`` and ``OwnedSecrets`` (``store/identity.py``), for requests ``RequestRecords``
(``store/requests.py``), plus ``ping`` and ``aclose``.

The contract is checked by one suite, ``tests/store/test_contract.py`` (and, for sign-in,
``tests/store/test_identity.py``), on every backend.

- Time is never read by a store: every call that depends on it takes ``now``.
- A secret whose ``expires_at <= now`` is treated as gone by every call, before any sweep.
- Each multi-step rule is one atomic statement, transaction or script inside the backend:
  never read-then-write across two round trips.
- Driver exceptions are translated into ``StorageUnavailable`` inside the backend.
- A store keeps each receipt until ``retention`` after the secret ended (or expired).
- Every call that changes a secret keeps the events of that change in the same atomic step
  (receipt lines and outbox records), or none when the change does not happen.
"""

from __future__ import annotations

from typing import Protocol

from burnlink.store.codes import Codes
from burnlink.store.counters import Counters
from burnlink.store.identity import ApiTokens, OwnedSecrets, Sessions
from burnlink.store.outbox import EventOutbox
from burnlink.store.requests import RequestRecords
from burnlink.store.secrets import SecretRecords

__all__ = ["SecretStore"]


class SecretStore(
    SecretRecords,
    EventOutbox,
    Counters,
    Codes,
    Sessions,
    ApiTokens,
    OwnedSecrets,
    RequestRecords,
    Protocol,
):
    """An async store of encrypted secrets and their receipts, recorded events, counters,
    one-time codes, and who is signed in (sessions, API tokens, the secrets each one owns)."""

    async def ping(self) -> None:
        """Return if the store answers, else raise ``StorageUnavailable``."""

    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""
