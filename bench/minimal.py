"""The minimal contender: FastAPI and pydantic around one Redis call, and nothing else.

The issue's orientation figure ("a minimal FastAPI + pydantic + redis.asyncio create/reveal")
measured in the same run: the floor (``bench.floor``) plus the framework burnlink is built
on. No cryptography, rate limits, audit log, access log or security headers. Create
validates ``{"secret", "ttl"}`` and ``SET``s it under a random id; reveal validates
``{"key"}`` and ``GETDEL``s the id (the ids are synthetic, as for the floor). The store URL,
prefix included, comes from ``BURNLINK_STORE``.
"""

from __future__ import annotations

import os
import secrets
from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from burnlink.store.redis.client import client_for

app = FastAPI()
_client: Any = None
_prefix = ""


class CreateBody(BaseModel):
    secret: Annotated[str, Field(min_length=1, max_length=65536)]
    ttl: Annotated[int, Field(ge=60, le=7 * 86400)]


class Created(BaseModel):
    id: str
    url: str


class RevealBody(BaseModel):
    key: Annotated[str, Field(min_length=43, max_length=43)]


class Revealed(BaseModel):
    secret: str | None
    views_left: int


def _redis() -> Any:
    global _client, _prefix
    if _client is None:
        _client, _prefix = client_for(os.environ["BURNLINK_STORE"])
        _prefix += "minimal:"
    return _client


@app.post("/api/v1/secrets", status_code=201)
async def create(body: CreateBody) -> Created:
    """Store the text as is under a random id."""
    secret_id = secrets.token_urlsafe(16)
    await _redis().set(_prefix + secret_id, body.secret, ex=body.ttl)
    return Created(id=secret_id, url=f"http://127.0.0.1/s/{secret_id}#{'A' * 43}")


@app.post("/api/v1/secrets/{secret_id}/reveal")
async def reveal(secret_id: str, body: RevealBody) -> Revealed:
    """Take the stored text, if any."""
    value = await _redis().getdel(_prefix + secret_id)
    return Revealed(secret=value.decode() if value is not None else None, views_left=0)
