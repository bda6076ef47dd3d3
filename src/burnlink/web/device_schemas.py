"""Request and response bodies of the CLI sign-in routes (``web.device_api``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from burnlink.identity.device import MAX_DEVICE_CODE
from burnlink.service.tokens import MAX_NAME_CHARS
from burnlink.web.schemas import Instant

__all__ = ["DeviceStartResponse", "DeviceTokenRequest", "DeviceTokenResponse"]


class DeviceStartResponse(BaseModel):
    """A started CLI sign-in (RFC 8628 §3.2, as the identity provider answered it)."""

    user_code: str = Field(description="The code the user enters at `verification_uri`.")
    verification_uri: str = Field(description="The identity provider's page for the code.")
    verification_uri_complete: str | None = Field(
        description="The same page with the code filled in, when the provider gives one."
    )
    device_code: str = Field(
        description="What the CLI polls with; keep it to yourself, never show it."
    )
    interval: int = Field(ge=1, description="Seconds to wait between two polls.")
    expires_in: int = Field(ge=1, description="Seconds until the codes expire.")


class DeviceTokenRequest(BaseModel):
    """A poll of a CLI sign-in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_code: str = Field(min_length=1, max_length=MAX_DEVICE_CODE)
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description='The new API token\'s name (default "burnlink CLI"); the CLI sends'
        ' "burnlink CLI on <hostname>".',
    )


class DeviceTokenResponse(BaseModel):
    """The API token a completed CLI sign-in made. Shown once."""

    token: str = Field(description="The API token (`blk_...`): send as `Authorization: Bearer`.")
    token_id: str = Field(description="The token's public id (`tok_...`), to list or revoke it.")
    name: str
    scopes: list[str]
    expires_at: Instant
    subject: str = Field(description="The identity provider's `sub` for the user.")
    email: str | None
