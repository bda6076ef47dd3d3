"""What two server processes sharing one store must agree on, on every persistent backend:
exactly-once reveals, rate-limit counters, and who is signed in (a sign-out or a token
revocation through one holds on the other at once)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest

from burnlink.store import open_store
from tests.conftest import RETENTION, store_url
from tests.servers import server_process
from tests.web.signed_in import CLIENT_SECRET, bearer, sign_in

pytestmark = pytest.mark.anyio

READERS = 40


async def race(servers: list[str], views: int) -> list[int]:
    """Create a secret with ``views`` views, reveal it from READERS clients over all servers."""
    async with httpx.AsyncClient(timeout=30) as http:
        created = (
            await http.post(
                f"{servers[0]}/api/v1/secrets", json={"secret": "race", "max_views": views}
            )
        ).json()
        key = created["url"].split("#")[1]
        statuses: list[int] = []
        start = anyio.Event()

        async def reader(number: int) -> None:
            await start.wait()
            base = servers[number % len(servers)]
            response = await http.post(
                f"{base}/api/v1/secrets/{created['id']}/reveal", json={"key": key}
            )
            statuses.append(response.status_code)

        async with anyio.create_task_group() as group:
            for number in range(READERS):
                group.start_soon(reader, number)
            await anyio.sleep(0.05)
            start.set()
        return statuses


@pytest.mark.parametrize("backend", ["sqlite", "redis", "redis-cluster", "postgres"])
async def test_two_server_processes_reveal_exactly_min_k_v(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(backend, request, tmp_path)
    # One client address makes every request here: rate limits would refuse the race itself.
    unlimited = {
        "BURNLINK_RATE_LIMIT_REVEAL": "off",
        "BURNLINK_RATE_LIMIT_FAILURES": "off",
        "BURNLINK_RATE_LIMIT_SECRET_FAILURES": "off",
    }
    with (
        server_process(url, tmp_path / "a.log", env=unlimited) as first,
        server_process(url, tmp_path / "b.log", env=unlimited) as second,
    ):
        for views in (1, 3, 100):
            statuses = await race([first, second], views)
            assert statuses.count(200) == min(READERS, views), (views, statuses)
            assert set(statuses) <= {200, 404}


@pytest.mark.parametrize("backend", ["sqlite", "redis", "redis-cluster", "postgres"])
async def test_rate_limit_counters_are_shared_by_server_processes(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(backend, request, tmp_path)
    limit = {"BURNLINK_RATE_LIMIT_CREATE": "6/day"}
    with (
        server_process(url, tmp_path / "a.log", env=limit) as first,
        server_process(url, tmp_path / "b.log", env=limit) as second,
    ):
        async with httpx.AsyncClient(timeout=30) as http:
            statuses = [
                (await http.post(f"{base}/api/v1/secrets", json={"secret": "x"})).status_code
                for base in [first, second] * 4
            ]

    assert statuses == [201] * 6 + [429] * 2


# The provider is never asked: the session is put in the store as a sign-in leaves it, and
# sign-out's look-up of the provider's end-session endpoint finds nothing listening here.
SIGN_IN_ENV = {
    "BURNLINK_OIDC_ISSUER": "https://127.0.0.1:9",
    "BURNLINK_OIDC_CLIENT_ID": "burnlink",
    "BURNLINK_OIDC_CLIENT_SECRET": CLIENT_SECRET,
}


@pytest.fixture(params=["sqlite", "redis", "redis-cluster", "postgres"])
async def signed_in_servers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str, dict[str, str]]]:
    """Two server processes with sign-in on one store of each persistent backend, and the
    cookie and CSRF headers of a live session put in that store."""
    url = store_url(str(request.param), request, tmp_path)
    store = await open_store(url, retention=RETENTION)
    try:
        session = await sign_in(store, datetime.now(UTC))
    finally:
        await store.aclose()
    with (
        server_process(url, tmp_path / "a.log", env=SIGN_IN_ENV) as first,
        server_process(url, tmp_path / "b.log", env=SIGN_IN_ENV) as second,
    ):
        yield first, second, session


async def test_token_revoked_through_one_server_process_is_refused_by_the_other(
    signed_in_servers: tuple[str, str, dict[str, str]],
) -> None:
    first, second, session = signed_in_servers
    async with httpx.AsyncClient(timeout=30) as http:
        made = await http.post(
            f"{first}/api/v1/me/tokens",
            json={"name": "ci", "scopes": ["secrets:read-receipts"]},
            headers=session,
        )
        assert made.status_code == 201, made.text
        token = bearer(made.json()["token"])
        # The other process has just accepted it, so it would still hold it if it kept it.
        assert (await http.get(f"{second}/api/v1/me", headers=token)).status_code == 200

        revoked = await http.delete(
            f"{first}/api/v1/me/tokens/{made.json()['id']}", headers=session
        )
        assert revoked.status_code == 204, revoked.text

        refused = await http.get(f"{second}/api/v1/me", headers=token)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "invalid_token"
        assert (await http.get(f"{second}/api/v1/me/secrets", headers=token)).status_code == 401


async def test_session_signed_out_through_one_server_process_is_refused_by_the_other(
    signed_in_servers: tuple[str, str, dict[str, str]],
) -> None:
    first, second, session = signed_in_servers
    async with httpx.AsyncClient(timeout=30) as http:
        # The other process has just accepted it, so it would still hold it if it kept it.
        signed_in = await http.get(f"{second}/api/v1/me", headers=session)
        assert signed_in.status_code == 200, signed_in.text

        signed_out = await http.post(
            f"{first}/auth/logout", headers={**session, "accept": "application/json"}
        )
        assert signed_out.status_code == 200, signed_out.text

        refused = await http.get(f"{second}/api/v1/me", headers=session)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "login_required"
        assert (await http.get(f"{second}/api/v1/me/secrets", headers=session)).status_code == 401
