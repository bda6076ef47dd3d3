"""Who may create, through the real app (and its hot create path): anyone by default, owned
when signed in; with ``BURNLINK_CREATE_REQUIRES=login`` only signed-in users of the allowed
domains and groups, by session or by an API token with ``secrets:create``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.errors import ConfigError
from burnlink.identity.tokens import checksum, new_api_token
from burnlink.store.identity import SessionRecord, TokenRecord
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app
from tests.web.signed_in import SIGN_IN, bearer, make_token, sign_in

pytestmark = pytest.mark.anyio

SECRET = {"secret": "s3cret"}


class CountingStore(MemoryStore):
    """A memory store that counts the sign-in lookups made of it."""

    lookups = 0

    async def touch_session(
        self, digest: bytes, *, now: datetime, idle_seconds: int
    ) -> SessionRecord | None:
        self.lookups += 1
        return await super().touch_session(digest, now=now, idle_seconds=idle_seconds)

    async def use_token(self, digest: bytes, *, now: datetime) -> TokenRecord | None:
        self.lookups += 1
        return await super().use_token(digest, now=now)


def login_settings(**rules: Any) -> Settings:
    """``BURNLINK_CREATE_REQUIRES=login`` with ``rules``, sign-in configured."""
    return load_settings(
        store="memory://", max_bytes=64 * 1024, create_requires="login", **SIGN_IN, **rules
    )


@pytest.fixture
def settings() -> Settings:
    return load_settings(store="memory://", max_bytes=64 * 1024, **SIGN_IN)


@pytest.fixture
def memory_store(settings: Settings) -> MemoryStore:
    return CountingStore(retention=timedelta(days=settings.receipt_days))


async def owned(store: MemoryStore, owner: str, now: datetime) -> list[str]:
    return [r.secret_id for r in await store.owned_secrets(owner, now=now, limit=100)]


async def test_anonymous_create_needs_no_lookup_and_has_no_owner(
    client: httpx.AsyncClient, memory_store: CountingStore, clock: FrozenClock
) -> None:
    response = await client.post("/api/v1/secrets", json=SECRET)

    assert response.status_code == 201
    assert memory_store.lookups == 0
    receipt = await memory_store.receipt(response.json()["id"], now=clock.now())
    assert receipt is not None
    assert receipt.owner is None


async def test_session_create_is_owned_and_labelled(
    client: httpx.AsyncClient, memory_store: CountingStore, clock: FrozenClock
) -> None:
    session = await sign_in(memory_store, clock.now())

    response = await client.post(
        "/api/v1/secrets", json={**SECRET, "label": "db password for Bob"}, headers=session
    )

    assert response.status_code == 201, response.text
    secret_id = response.json()["id"]
    assert await owned(memory_store, "alice-sub", clock.now()) == [secret_id]
    receipt = await memory_store.receipt(secret_id, now=clock.now())
    assert receipt is not None
    assert receipt.label == "db password for Bob"
    assert (receipt.owner, receipt.owner_email) == ("alice-sub", "alice@example.com")


@pytest.mark.parametrize(
    "label", [pytest.param("", id="empty"), "x" * 101, pytest.param("a\nb", id="newline")]
)
async def test_create_refuses_a_bad_label(client: httpx.AsyncClient, label: str) -> None:
    response = await client.post("/api/v1/secrets", json={**SECRET, "label": label})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "label"


async def test_token_create_is_owned_by_the_tokens_user(
    client: httpx.AsyncClient, memory_store: CountingStore, clock: FrozenClock
) -> None:
    made = await make_token(client, await sign_in(memory_store, clock.now()))

    response = await client.post("/api/v1/secrets", json=SECRET, headers=bearer(made["token"]))

    assert response.status_code == 201
    assert await owned(memory_store, "alice-sub", clock.now()) == [response.json()["id"]]


async def test_token_without_create_scope_is_refused_naming_it(
    client: httpx.AsyncClient, memory_store: CountingStore, clock: FrozenClock
) -> None:
    session = await sign_in(memory_store, clock.now())
    made = await make_token(client, session, scopes=["secrets:read-receipts"])

    response = await client.post("/api/v1/secrets", json=SECRET, headers=bearer(made["token"]))

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope"
    assert error["scope"] == "secrets:create"
    assert 'scope="secrets:create"' in response.headers["www-authenticate"]


UNKNOWN_TOKEN = "blk_" + "A" * 43 + checksum("A" * 43)  # well formed; no one holds it


@pytest.mark.parametrize(
    "token", [pytest.param(UNKNOWN_TOKEN, id="unknown"), pytest.param("blk_short", id="short")]
)
async def test_create_with_an_invalid_token_is_refused_not_anonymous(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post("/api/v1/secrets", json=SECRET, headers=bearer(token))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


async def test_create_with_a_bad_checksum_makes_no_lookup(
    client: httpx.AsyncClient, memory_store: CountingStore
) -> None:
    token = new_api_token()
    wrong = token[:-1] + ("B" if token[-1] == "A" else "A")

    response = await client.post("/api/v1/secrets", json=SECRET, headers=bearer(wrong))

    assert response.status_code == 401
    assert memory_store.lookups == 0


@pytest.fixture
async def login_app(
    request: pytest.FixtureRequest, memory_store: MemoryStore, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(login_settings(**request.param), memory_store, clock)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://burnlink.test") as http,
    ):
        yield http


@pytest.mark.parametrize("login_app", [{}], indirect=True)
async def test_login_mode_refuses_anonymous_create_with_a_login_url(
    login_app: httpx.AsyncClient, memory_store: CountingStore, clock: FrozenClock
) -> None:
    anonymous = await login_app.post("/api/v1/secrets", json=SECRET)
    signed_in = await login_app.post(
        "/api/v1/secrets", json=SECRET, headers=await sign_in(memory_store, clock.now())
    )

    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == {
        "code": "login_required",
        "message": "Sign in to create secrets on this server.",
        "login_url": "http://127.0.0.1:8000/auth/login?next=%2F",
    }
    assert signed_in.status_code == 201


RULES = {"create_allowed_domains": ["example.com"], "create_allowed_groups": ["sales"]}


@pytest.mark.parametrize("login_app", [RULES], indirect=True)
@pytest.mark.parametrize(
    ("email", "groups", "allowed"),
    [
        pytest.param("alice@example.com", (), True, id="domain"),
        pytest.param("ALICE@EXAMPLE.COM", (), True, id="domain-case"),
        pytest.param("carol@partner.test", ("sales",), True, id="group"),
        pytest.param("carol@partner.test", (), False, id="neither"),
        pytest.param("eve@sub.example.com", ("engineering",), False, id="subdomain"),
        pytest.param(None, (), False, id="no-email"),
    ],
)
async def test_login_mode_holds_sessions_to_domains_and_groups(
    login_app: httpx.AsyncClient,
    memory_store: CountingStore,
    clock: FrozenClock,
    email: str | None,
    groups: tuple[str, ...],
    allowed: bool,
) -> None:
    session = await sign_in(memory_store, clock.now(), email=email, groups=groups)

    response = await login_app.post("/api/v1/secrets", json=SECRET, headers=session)

    if allowed:
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "create_not_allowed"


@pytest.mark.parametrize("login_app", [RULES], indirect=True)
async def test_login_mode_holds_tokens_to_their_users_groups(
    login_app: httpx.AsyncClient, memory_store: CountingStore, clock: FrozenClock
) -> None:
    seller = await sign_in(memory_store, clock.now(), email="c@partner.test", groups=("sales",))
    outsider = await sign_in(memory_store, clock.now(), subject="o", email="o@partner.test")
    good = await make_token(login_app, seller)
    bad = await make_token(login_app, outsider)

    allowed = await login_app.post("/api/v1/secrets", json=SECRET, headers=bearer(good["token"]))
    refused = await login_app.post("/api/v1/secrets", json=SECRET, headers=bearer(bad["token"]))

    assert allowed.status_code == 201
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "create_not_allowed"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"create_requires": "login"}, "needs sign-in configured", id="no-sign-in"),
        pytest.param(
            {"create_allowed_groups": "sales"}, "apply only with", id="groups-without-login"
        ),
        pytest.param({"create_allowed_domains": "not a domain"}, "email domain", id="bad-domain"),
        pytest.param({"create_requires": "maybe"}, "CREATE_REQUIRES", id="bad-mode"),
    ],
)
def test_create_settings_are_checked(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(store="memory://", **settings)
