"""Signed-in users for the web tests: a session put in the store (as the sign-in flow would
leave it), its cookie, and API tokens made through the API."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import httpx

from burnlink.identity.sessions import CSRF_HEADER, csrf_token
from burnlink.identity.transaction import SignInKeys
from burnlink.ids import token_digest
from burnlink.store.identity import SessionRecord, Sessions

COOKIE = "burnlink_session"
"""The cookie's name over plain http on loopback (the test client's case)."""
ALL_SCOPES = ["secrets:create", "secrets:read-receipts", "secrets:burn"]
CLIENT_SECRET = "client-secret-of-the-token-tests"
SIGN_IN: dict[str, Any] = {
    "oidc_issuer": "https://idp.example.test",
    "oidc_client_id": "burnlink",
    "oidc_client_secret": CLIENT_SECRET,
    "base_url": "http://127.0.0.1:8000",
}
"""Settings that turn sign-in on (the provider is never asked: sessions are put in the store,
as a sign-in leaves them)."""


async def sign_in(
    store: Sessions,
    now: datetime,
    *,
    subject: str = "alice-sub",
    email: str | None = "alice@example.com",
    groups: tuple[str, ...] = ("engineering", "admins"),
    signed_in_ago: timedelta = timedelta(seconds=30),
    mfa: bool = True,
) -> dict[str, str]:
    """A session for the user in ``store``; the ``cookie`` header that presents it, and the
    session's CSRF header (as the page sends it with requests that change state)."""
    value = secrets.token_urlsafe(32)
    await store.put_session(
        SessionRecord(
            digest=token_digest(value.encode()),
            subject=subject,
            email=email,
            groups=groups,
            mfa=mfa,
            auth_time=now - signed_in_ago,
            created_at=now - signed_in_ago,
            last_seen=now,
            expires_at=now + timedelta(hours=12),
        )
    )
    csrf = csrf_token(SignInKeys.derive(CLIENT_SECRET).csrf, value)
    return {"cookie": f"{COOKIE}={value}", CSRF_HEADER: csrf}


async def make_token(
    client: httpx.AsyncClient,
    session: dict[str, str],
    *,
    scopes: list[str] | None = None,
    name: str = "ci",
    **fields: Any,
) -> dict[str, Any]:
    """A token made with ``session``, as ``POST /api/v1/me/tokens`` answers."""
    response = await client.post(
        "/api/v1/me/tokens",
        json={"name": name, "scopes": ALL_SCOPES if scopes is None else scopes, **fields},
        headers=session,
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
