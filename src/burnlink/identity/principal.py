"""``Principal``: the signed-in user a request acts for, from a session cookie or an API token.

Anonymous requests have no principal (``None``): burnlink stays usable without an account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["SCOPES", "Principal"]

SCOPES = ("secrets:create", "secrets:read-receipts", "secrets:burn")
"""What an API token may be allowed to do; a session may do all of it."""


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user, as the identity provider vouched for them."""

    subject: str
    """The provider's ``sub``: stable, unique, what secrets are owned by."""
    email: str | None
    groups: tuple[str, ...]
    mfa: bool
    """Whether the sign-in behind this request carried a second factor."""
    auth_time: datetime | None
    """When the user last authenticated at the provider (``None`` for a token)."""
    via: Literal["session", "token"]
    scopes: frozenset[str] | None = None
    """A token's scopes; ``None`` for a session, which may do everything its user may."""
    token_id: str | None = None

    def may(self, scope: str) -> bool:
        """Whether this request may do what ``scope`` names."""
        return self.scopes is None or scope in self.scopes
