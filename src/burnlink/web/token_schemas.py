"""Request and response bodies of the API token routes (docs/api.md § API tokens)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from burnlink.identity.principal import SCOPES
from burnlink.service.tokens import MAX_DAYS, MAX_NAME_CHARS
from burnlink.store.identity import TokenRecord
from burnlink.web.schemas import Instant

__all__ = ["CreateTokenRequest", "CreatedTokenResponse", "TokenBody", "TokenList"]

Scope = Literal["secrets:create", "secrets:read-receipts", "secrets:burn"]
assert SCOPES == ("secrets:create", "secrets:read-receipts", "secrets:burn")  # noqa: S101 - in step


class CreateTokenRequest(BaseModel):
    """Make a personal API token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="What the token is for (shown in lists).",
    )
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(SCOPES))] = Field(
        description="What the token may do."
    )
    expires_in_days: Annotated[StrictInt, Field(ge=1, le=MAX_DAYS)] | None = Field(
        default=None, description="Days until the token expires (default 90, at most 365)."
    )


class TokenBody(BaseModel):
    """An API token as listed: never the token itself."""

    id: str = Field(description="The token's public id (``tok_...``), used to revoke it.")
    name: str
    scopes: list[str]
    created_at: Instant
    expires_at: Instant
    last_used: Instant | None
    revoked_at: Instant | None
    state: Literal["active", "expired", "revoked"]

    @classmethod
    def of(cls, record: TokenRecord, now: datetime) -> TokenBody:
        """The listing of ``record`` at ``now``."""
        state: Literal["active", "expired", "revoked"] = (
            "revoked"
            if record.revoked_at is not None
            else "expired"
            if now >= record.expires_at
            else "active"
        )
        return cls(
            id=record.token_id,
            name=record.name,
            scopes=list(record.scopes),
            created_at=record.created_at,
            expires_at=record.expires_at,
            last_used=record.last_used,
            revoked_at=record.revoked_at,
            state=state,
        )


class CreatedTokenResponse(TokenBody):
    """A token just made: ``token`` is shown this once and never again."""

    token: str = Field(description="The bearer token (``blk_...``); store it now.")


class TokenList(BaseModel):
    """The signed-in user's tokens, newest first."""

    tokens: list[TokenBody]
