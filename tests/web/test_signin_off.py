"""Without ``BURNLINK_OIDC_ISSUER`` nothing changes: no sign-in routes, no account area, and a
session cookie or CSRF header means nothing."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/login"),
        ("GET", "/auth/callback"),
        ("POST", "/auth/logout"),
        ("GET", "/api/v1/me"),
        ("GET", "/me"),
    ],
)
async def test_sign_in_routes_are_absent(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)

    assert response.status_code == 404


async def test_compose_page_has_no_account_area(client: httpx.AsyncClient) -> None:
    page = await client.get("/")

    assert page.status_code == 200
    assert 'id="account"' not in page.text


async def test_no_sign_in_service_is_made(app: FastAPI, client: httpx.AsyncClient) -> None:
    await client.get("/")

    assert getattr(app.state, "signin", None) is None
