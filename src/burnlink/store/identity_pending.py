"""A stand-in for the sign-in part of the store (``store/identity.py``) on the backends that do
not keep it yet: every call fails closed with ``StorageUnavailable``. Removed as each backend
gains its own implementation."""

from __future__ import annotations

from datetime import datetime

from burnlink.errors import StorageUnavailable
from burnlink.models import ReceiptRecord
from burnlink.store.identity import SessionRecord, TokenRecord

__all__ = ["IdentityPending"]


def _pending() -> StorageUnavailable:
    return StorageUnavailable("This store does not keep sign-in yet.")


class IdentityPending:
    """``Sessions``, ``ApiTokens`` and ``OwnedSecrets`` that refuse every call."""

    async def put_session(self, record: SessionRecord) -> None:
        """Refused."""
        raise _pending()

    async def touch_session(
        self, digest: bytes, *, now: datetime, idle_seconds: int
    ) -> SessionRecord | None:
        """Refused."""
        raise _pending()

    async def end_session(self, digest: bytes) -> bool:
        """Refused."""
        raise _pending()

    async def end_sessions_of(self, subject: str) -> int:
        """Refused."""
        raise _pending()

    async def put_token(self, record: TokenRecord) -> None:
        """Refused."""
        raise _pending()

    async def use_token(self, digest: bytes, *, now: datetime) -> TokenRecord | None:
        """Refused."""
        raise _pending()

    async def list_tokens(self, subject: str, *, now: datetime) -> list[TokenRecord]:
        """Refused."""
        raise _pending()

    async def revoke_token(self, token_id: str, *, now: datetime, subject: str | None) -> bool:
        """Refused."""
        raise _pending()

    async def owned_secrets(self, owner: str, *, now: datetime, limit: int) -> list[ReceiptRecord]:
        """Refused."""
        raise _pending()
