"""Team rules on both ways ``POST /api/v1/secrets`` is served: the hot route, and FastAPI's own
route (an app mounted under a ``root_path`` is served by it); with a session put in the store,
as a sign-in leaves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app
from tests.web.signed_in import SIGN_IN, sign_in

pytestmark = pytest.mark.anyio

TEAMS = {"engineering": {"max_views": 2, "recipients_require_mfa": True}}


@pytest.fixture(params=["", "/burnlink"], ids=["hot-route", "fastapi-route"])
async def mounted(
    request: pytest.FixtureRequest, clock: FrozenClock
) -> AsyncIterator[tuple[httpx.AsyncClient, MemoryStore, str]]:
    settings = load_settings(store="memory://", **SIGN_IN, teams=TEAMS)
    store = MemoryStore(retention=timedelta(days=1))
    app = create_app(settings, store, clock)
    root: str = request.param
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000), root_path=root)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client,
    ):
        yield client, store, root


async def test_team_rules_hold_on_both_routes(
    mounted: tuple[httpx.AsyncClient, MemoryStore, str], clock: FrozenClock
) -> None:
    client, store, root = mounted
    session = await sign_in(store, clock.now())  # alice: engineering, admins
    url = f"{root}/api/v1/secrets"

    refused = await client.post(url, json={"secret": "s", "max_views": 3}, headers=session)
    no_recipients = await client.post(url, json={"secret": "s"}, headers=session)
    created = await client.post(
        url, json={"secret": "s", "recipients": ["group:engineering"]}, headers=session
    )

    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == {
        "code": "team_policy",
        "message": "Your teams allow at most 2 views.",
        "field": "max_views",
        "teams": ["engineering"],
    }
    assert no_recipients.status_code == 403
    assert no_recipients.json()["error"]["field"] == "recipients"
    assert created.status_code == 201, created.text
    meta = await store.peek(created.json()["id"], now=clock.now())
    assert meta is not None
    assert meta.policy.require_mfa is True
