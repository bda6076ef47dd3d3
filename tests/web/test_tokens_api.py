"""Personal API tokens through the real app: made from a fresh session, shown once, listed,
used as bearers, refused when revoked, expired, malformed or short of a scope, and revoked by
an administrator."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.identity.tokens import PATTERN, new_api_token
from burnlink.store.memory import MemoryStore
from tests.web.signed_in import ALL_SCOPES, SIGN_IN, bearer, make_token, sign_in

pytestmark = pytest.mark.anyio

ADMIN_TOKEN = "admin-token-for-the-token-tests"


@pytest.fixture
def settings() -> Settings:
    return load_settings(store="memory://", max_bytes=64 * 1024, admin_token=ADMIN_TOKEN, **SIGN_IN)


async def test_token_is_made_shown_once_and_listed_without_it(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    session = await sign_in(memory_store, clock.now())

    made = await make_token(client, session, scopes=["secrets:burn", "secrets:create"])
    listed = await client.get("/api/v1/me/tokens", headers=session)

    assert re.fullmatch(PATTERN, made["token"])
    assert made["scopes"] == ["secrets:create", "secrets:burn"]
    assert made["state"] == "active"
    assert made["expires_at"] == (clock.now() + timedelta(days=90)).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    assert listed.status_code == 200
    (entry,) = listed.json()["tokens"]
    assert entry["id"] == made["id"]
    assert "token" not in entry
    assert made["token"] not in listed.text


async def test_token_acts_for_its_user_and_records_last_use(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    session = await sign_in(memory_store, clock.now())
    made = await make_token(client, session)
    clock.advance(60)

    listed = await client.get("/api/v1/me/tokens", headers=bearer(made["token"]))

    assert listed.status_code == 200
    (entry,) = listed.json()["tokens"]
    assert entry["last_used"] is not None


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"name": "", "scopes": ["secrets:create"]}, id="empty-name"),
        pytest.param({"name": "x" * 65, "scopes": ["secrets:create"]}, id="long-name"),
        pytest.param({"name": "a\u0000b", "scopes": ["secrets:create"]}, id="control-name"),
        pytest.param({"name": "ci", "scopes": []}, id="no-scopes"),
        pytest.param({"name": "ci", "scopes": ["admin"]}, id="unknown-scope"),
        pytest.param(
            {"name": "ci", "scopes": ["secrets:create"], "expires_in_days": 366}, id="past-a-year"
        ),
        pytest.param(
            {"name": "ci", "scopes": ["secrets:create"], "expires_in_days": 0}, id="zero-days"
        ),
        pytest.param(
            {"name": "ci", "scopes": ["secrets:create"], "expires_in_days": "30"}, id="string"
        ),
        pytest.param({"name": "ci", "scopes": ["secrets:create"], "id": "x"}, id="unknown"),
    ],
)
async def test_token_create_refuses_bad_fields(
    client: httpx.AsyncClient,
    memory_store: MemoryStore,
    clock: FrozenClock,
    fields: dict[str, object],
) -> None:
    session = await sign_in(memory_store, clock.now())

    response = await client.post("/api/v1/me/tokens", json=fields, headers=session)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_field"


async def test_token_create_accepts_a_year(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    session = await sign_in(memory_store, clock.now())

    made = await make_token(client, session, expires_in_days=365)

    assert made["expires_at"].startswith(str((clock.now() + timedelta(days=365)).date()))


async def test_token_create_refuses_duplicate_names_in_the_body(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    session = await sign_in(memory_store, clock.now())

    response = await client.post(
        "/api/v1/me/tokens",
        content=b'{"name": "a", "name": "b", "scopes": ["secrets:burn"]}',
        headers={**session, "content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_token_create_needs_a_signed_in_session(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/me/tokens", json={"name": "ci", "scopes": ["secrets:create"]}
    )

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "login_required"
    assert error["login_url"].startswith("http://127.0.0.1:8000/auth/login?next=")


async def test_token_create_needs_a_fresh_sign_in(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    stale = await sign_in(memory_store, clock.now(), signed_in_ago=timedelta(minutes=6))

    response = await client.post(
        "/api/v1/me/tokens", json={"name": "ci", "scopes": ["secrets:create"]}, headers=stale
    )

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "fresh_login_required"
    assert "max_age=" in error["login_url"]


async def test_token_cannot_make_a_token(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    made = await make_token(client, await sign_in(memory_store, clock.now()))

    response = await client.post(
        "/api/v1/me/tokens",
        json={"name": "child", "scopes": ["secrets:create"]},
        headers=bearer(made["token"]),
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_permitted"


@pytest.mark.parametrize(
    "case", ["unknown", "bad-checksum", "revoked", "expired", "admin-revoked", "garbage"]
)
async def test_invalid_token_gets_one_answer(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock, case: str
) -> None:
    session = await sign_in(memory_store, clock.now())
    made = await make_token(client, session, expires_in_days=1)
    token = made["token"]
    if case == "unknown":
        token = new_api_token()
    elif case == "bad-checksum":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    elif case == "garbage":
        token = "blk_" + "!" * 10
    elif case == "revoked":
        response = await client.delete(f"/api/v1/me/tokens/{made['id']}", headers=session)
        assert response.status_code == 204
    elif case == "admin-revoked":
        response = await client.delete(
            f"/api/v1/admin/tokens/{made['id']}", headers=bearer(ADMIN_TOKEN)
        )
        assert response.status_code == 204
    else:
        clock.advance(86400)

    response = await client.get("/api/v1/me/tokens", headers=bearer(token))

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "invalid_token",
        "message": "The API token is invalid, expired or revoked.",
    }
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_token_listing_keeps_revoked_and_expired_ones_marked(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    session = await sign_in(memory_store, clock.now())
    short = await make_token(client, session, name="short", expires_in_days=1)
    revoked = await make_token(client, session, name="revoked")
    await client.delete(f"/api/v1/me/tokens/{revoked['id']}", headers=session)
    clock.advance(86400)
    session = await sign_in(memory_store, clock.now())

    listed = (await client.get("/api/v1/me/tokens", headers=session)).json()["tokens"]

    states = {entry["id"]: entry["state"] for entry in listed}
    assert states == {short["id"]: "expired", revoked["id"]: "revoked"}


async def test_token_revoke_is_for_the_owner_only(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    alice = await sign_in(memory_store, clock.now())
    bob = await sign_in(memory_store, clock.now(), subject="bob-sub", email="bob@example.com")
    made = await make_token(client, alice)

    by_bob = await client.delete(f"/api/v1/me/tokens/{made['id']}", headers=bob)
    bobs_list = await client.get("/api/v1/me/tokens", headers=bob)
    still = await client.get("/api/v1/me/tokens", headers=bearer(made["token"]))
    again = await client.delete(f"/api/v1/me/tokens/{made['id']}", headers=alice)
    twice = await client.delete(f"/api/v1/me/tokens/{made['id']}", headers=alice)

    assert by_bob.status_code == 404
    assert bobs_list.json() == {"tokens": []}
    assert still.status_code == 200
    assert again.status_code == 204
    assert twice.status_code == 404


@pytest.mark.parametrize("token_id", ["tok_AAAAAAAAAAAAAAAA", "not-an-id", "x" * 300])
async def test_token_revoke_of_an_unknown_id_is_not_found(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock, token_id: str
) -> None:
    session = await sign_in(memory_store, clock.now())

    mine = await client.delete(f"/api/v1/me/tokens/{token_id}", headers=session)
    admin = await client.delete(f"/api/v1/admin/tokens/{token_id}", headers=bearer(ADMIN_TOKEN))

    assert mine.status_code == admin.status_code == 404


async def test_admin_revoke_needs_the_admin_token(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    made = await make_token(client, await sign_in(memory_store, clock.now()))

    denied = await client.delete(
        f"/api/v1/admin/tokens/{made['id']}", headers=bearer("wrong-admin-token-0123456789")
    )
    by_itself = await client.delete(
        f"/api/v1/admin/tokens/{made['id']}", headers=bearer(made["token"])
    )
    still = await client.get("/api/v1/me/tokens", headers=bearer(made["token"]))

    assert denied.status_code == by_itself.status_code == 401
    assert denied.json()["error"]["code"] == "unauthorized"
    assert still.status_code == 200


async def test_session_after_its_end_is_anonymous(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    session = await sign_in(memory_store, clock.now())
    clock.advance(13 * 3600)

    response = await client.get("/api/v1/me/tokens", headers=session)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "login_required"


def test_all_scopes_are_the_shared_ones() -> None:
    from burnlink.identity.principal import SCOPES

    assert tuple(ALL_SCOPES) == SCOPES
