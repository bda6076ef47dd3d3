"""Bodies of the "my secrets" routes (docs/api.md § My secrets)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from burnlink.ids import SECRET_ID_PATTERN
from burnlink.web.schemas import Instant, ReceiptSummary

__all__ = ["MAX_BURN", "BurnMany", "BurnManyResult", "MySecret", "MySecrets"]

MAX_BURN = 100


class MySecret(ReceiptSummary):
    """One of the user's secrets, as listed: never content, never a token."""

    label: str | None
    last_event: str | None = Field(description="The latest receipt event's type.")
    last_event_at: Instant | None
    receipt_url: str = Field(description="This secret's receipt, for its owner (a path).")


class MySecrets(BaseModel):
    """The user's secrets, newest first."""

    secrets: list[MySecret]


class BurnMany(BaseModel):
    """Burn these of the user's secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ids: Annotated[
        list[Annotated[str, Field(pattern=SECRET_ID_PATTERN)]],
        Field(min_length=1, max_length=MAX_BURN),
    ]


class BurnManyResult(BaseModel):
    """Which ids were burned (or had already ended), and which are not the user's."""

    burned: list[str]
    not_found: list[str]
