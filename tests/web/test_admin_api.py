"""The admin API through the real app: who is let in (the admin token, or a session of a
member of ``BURNLINK_ADMIN_GROUPS`` with a fresh second factor), and what it reads: activity,
audit search and export, every user's tokens (revoked with CSRF, audited with the admin as
actor), the policy in force. The browser console and the real provider are in
tests/browser/test_admin_console.py."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from burnlink.audit.chain import verify
from burnlink.audit.events import secret_hash
from burnlink.audit.export import read_jsonl
from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.errors import ConfigError
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app
from tests.web.signed_in import SIGN_IN, bearer, make_token, sign_in

pytestmark = pytest.mark.anyio

ADMIN_TOKEN = "admin-token-for-the-admin-console-tests"
AUDIT_KEY = bytes(range(32))
MAX_AGE = 900


@pytest.fixture
def settings() -> Settings:
    return load_settings(
        store="memory://",
        max_bytes=64 * 1024,
        admin_token=ADMIN_TOKEN,
        admin_groups=["admins"],
        admin_max_age=MAX_AGE,
        audit_key=AUDIT_KEY.hex(),
        trusted_proxies=["203.0.113.7/32"],  # the test client; bob comes through it
        **SIGN_IN,
    )


async def admin(store: MemoryStore, clock: FrozenClock, **fields: Any) -> dict[str, str]:
    """Alice: in ``admins``, with a second factor, signed in 30 s ago (unless told)."""
    return await sign_in(store, clock.now(), **fields)


async def audit_entries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params=params, headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


# -- who is let in -----------------------------------------------------------------------------


async def test_an_admin_with_a_fresh_second_factor_is_let_in(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    session = await admin(memory_store, clock)

    answer = await client.get("/api/v1/admin/session", headers=session)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["via"], body["email"], body["subject"]) == (
        "session",
        "alice@example.com",
        "alice-sub",
    )
    signed_in = clock.now() - timedelta(seconds=30)
    assert body["fresh_until"] == (signed_in + timedelta(seconds=MAX_AGE)).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")


async def test_the_admin_token_is_let_in_without_a_session(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/admin/session", headers=bearer(ADMIN_TOKEN))

    assert answer.status_code == 200
    assert answer.json()["via"] == "admin_token"


@pytest.mark.parametrize(
    ("fields", "status", "code", "rule"),
    [
        pytest.param({"groups": ("sales",), "subject": "bob-sub"}, 403, "not_permitted",
                     "admin_group", id="outside-the-admin-groups"),
        pytest.param({"mfa": False}, 403, "mfa_required", "mfa", id="no-second-factor"),
        pytest.param({"signed_in_ago": timedelta(seconds=MAX_AGE + 1)}, 401,
                     "fresh_login_required", None, id="stale-sign-in"),
    ],
)  # fmt: skip
async def test_a_session_that_may_not_use_the_console_is_refused_and_reads_nothing(
    client: httpx.AsyncClient,
    memory_store: MemoryStore,
    clock: FrozenClock,
    fields: dict[str, Any],
    status: int,
    code: str,
    rule: str | None,
) -> None:
    session = await admin(memory_store, clock, **fields)

    answers = [
        await client.get(path, headers=session)
        for path in (
            "/api/v1/admin/session",
            "/api/v1/audit",
            "/api/v1/admin/activity",
            "/api/v1/admin/tokens",
            "/api/v1/admin/policy",
            "/api/v1/admin/audit/export",
        )
    ]

    assert {(a.status_code, a.json()["error"]["code"]) for a in answers} == {(status, code)}
    if status == 401:
        login = urlsplit(answers[0].json()["error"]["login_url"])
        assert login.path == "/auth/login"
        assert parse_qs(login.query) == {"next": ["/admin"], "max_age": [str(MAX_AGE)]}
    denied = await audit_entries(client, type="admin.denied")
    if rule is None:
        assert denied == []
    else:
        assert len(denied) == 6
        assert {e["event"]["policy"]["rule"] for e in denied} == {rule}
        assert {e["event"]["actor"]["subject"] for e in denied} == {
            fields.get("subject", "alice-sub")
        }


async def test_an_api_token_of_an_admin_is_not_the_admin_token(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    made = await make_token(client, await admin(memory_store, clock))

    answer = await client.get("/api/v1/admin/tokens", headers=bearer(made["token"]))

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


async def test_without_admin_groups_no_session_is_let_in_and_no_console_page(
    memory_store: MemoryStore, clock: FrozenClock
) -> None:
    settings = load_settings(store="memory://", admin_token=ADMIN_TOKEN, **SIGN_IN)
    app = create_app(settings, memory_store, clock)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://burnlink.test") as client,
    ):
        session = await admin(memory_store, clock)
        by_session = await client.get("/api/v1/admin/session", headers=session)
        by_token = await client.get("/api/v1/admin/session", headers=bearer(ADMIN_TOKEN))
        page = await client.get("/admin")

    assert (by_session.status_code, by_session.json()["error"]["code"]) == (403, "not_permitted")
    assert by_token.status_code == 200
    assert page.status_code == 404


async def test_admin_groups_need_sign_in_configured() -> None:
    with pytest.raises(ConfigError, match="BURNLINK_ADMIN_GROUPS needs sign-in configured"):
        load_settings(store="memory://", admin_groups=["admins"])


# -- what it reads -----------------------------------------------------------------------------


async def _traffic(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> dict[str, str]:
    """Two anonymous creates (one viewed), one by signed-in bob from another address the
    next day, and a wrong key; returns the secret ids by name."""
    first = (await client.post("/api/v1/secrets", json={"secret": "one"})).json()
    second = (await client.post("/api/v1/secrets", json={"secret": "two"})).json()
    viewed = await client.post(
        f"/api/v1/secrets/{first['id']}/reveal", json={"key": first["url"].split("#")[1]}
    )
    assert viewed.status_code == 200
    wrong = await client.post(f"/api/v1/secrets/{second['id']}/reveal", json={"key": "A" * 43})
    assert wrong.status_code == 404
    clock.advance(86400)
    bob = await sign_in(memory_store, clock.now(), subject="bob-sub", email="Bob@Example.com",
                        groups=("sales",))  # fmt: skip
    third = await client.post(
        "/api/v1/secrets",
        json={"secret": "three"},
        headers={**bob, "x-forwarded-for": "198.51.100.9"},
    )
    assert third.status_code == 201, third.text
    return {"first": first["id"], "second": second["id"], "third": third.json()["id"]}


async def test_the_search_filters_by_actor_secret_address_type_and_outcome(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    ids = await _traffic(client, memory_store, clock)
    session = await admin(memory_store, clock)

    async def types(**params: Any) -> list[str]:
        answer = await client.get("/api/v1/audit", params=params, headers=session)
        assert answer.status_code == 200, answer.text
        return [e["event"]["type"] for e in answer.json()["entries"]]

    assert await types(actor="bob@example.com") == ["secret.created"]
    assert await types(actor="bob-sub") == ["secret.created"]
    assert await types(secret_id=ids["first"]) == ["secret.created", "secret.viewed"]
    assert await types(secret_id=ids["second"]) == ["secret.created", "key.failed"]
    assert await types(outcome="failed") == ["key.failed"]
    assert await types(type="secret.created", client_ip="203.0.113.0/24") == [
        "secret.created",
        "secret.created",
    ]
    assert await types(client_ip="203.0.113.8") == []
    bad = await client.get("/api/v1/audit", params={"client_ip": "nowhere"}, headers=session)
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "client_ip")
    hashed = await client.get("/api/v1/audit", params={"secret_id": ids["third"]}, headers=session)
    assert {e["event"]["secret_hash"] for e in hashed.json()["entries"]} == {
        secret_hash(ids["third"])
    }


async def test_search_pages_through_matches_only(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    for n in range(5):
        assert (await client.post("/api/v1/secrets", json={"secret": f"s{n}"})).status_code == 201
    session = await admin(memory_store, clock)

    pages: list[list[int]] = []
    after: int | None = 0
    while after is not None:
        answer = await client.get(
            "/api/v1/audit",
            params={"type": "secret.created", "limit": 2, "after": after},
            headers=session,
        )
        body = answer.json()
        pages.append([e["seq"] for e in body["entries"]])
        after = body["next_after"]

    assert [len(page) for page in pages] == [2, 2, 1]
    seqs = [seq for page in pages for seq in page]
    assert seqs == sorted(set(seqs))


async def test_activity_counts_each_kind_per_day_with_empty_days(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    start = clock.now()
    await _traffic(client, memory_store, clock)
    clock.advance(86400)
    session = await admin(memory_store, clock)

    answer = await client.get(
        "/api/v1/admin/activity",
        params={"since": (start - timedelta(days=1)).isoformat(), "bucket": "day"},
        headers=session,
    )

    assert answer.status_code == 200, answer.text
    buckets = answer.json()["buckets"]
    # The day before, and the two days with traffic: the period ends (exclusive) at now, the
    # frozen clock's midnight two days on.
    assert [b["start"][:10] for b in buckets] == ["2029-12-31", "2030-01-01", "2030-01-02"]
    kinds = ("created", "viewed", "expired", "burned", "denied", "alerts")
    counts = [tuple(b[kind] for kind in kinds) for b in buckets]
    assert counts[0] == (0, 0, 0, 0, 0, 0)
    assert counts[1] == (2, 1, 0, 0, 1, 0)
    assert counts[2] == (1, 0, 0, 0, 0, 0)
    too_many = await client.get(
        "/api/v1/admin/activity",
        params={"since": (start - timedelta(days=60)).isoformat(), "bucket": "hour"},
        headers=session,
    )
    assert (too_many.status_code, too_many.json()["error"]["field"]) == (422, "since")


async def test_export_streams_the_matches_as_csv_or_verifiable_json_lines(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    ids = await _traffic(client, memory_store, clock)
    session = await admin(memory_store, clock)

    as_csv = await client.get(
        "/api/v1/admin/audit/export",
        params={"format": "csv", "secret_id": ids["first"]},
        headers=session,
    )
    everything = await client.get(
        "/api/v1/admin/audit/export", params={"format": "jsonl"}, headers=session
    )

    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["type"] for row in rows] == ["secret.created", "secret.viewed"]
    assert everything.headers["content-type"] == "application/jsonl"
    lines = everything.text.splitlines()
    assert [json.loads(line)["event"]["type"] for line in lines][:2] == [
        "secret.created",
        "secret.created",
    ]
    assert verify(read_jsonl(io.StringIO(everything.text)), AUDIT_KEY).ok


async def test_tokens_of_every_user_are_listed_and_revoked_by_an_admin_with_csrf(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    bob = await sign_in(memory_store, clock.now(), subject="bob-sub", email="bob@example.com",
                        groups=("sales",))  # fmt: skip
    bobs = await make_token(client, bob, name="bob-ci")
    clock.advance(1)
    session = await admin(memory_store, clock)
    alices = await make_token(client, session, name="alice-ci")

    listed = await client.get("/api/v1/admin/tokens", headers=session)
    without_csrf = await client.delete(
        f"/api/v1/admin/tokens/{bobs['id']}", headers={"cookie": session["cookie"]}
    )
    revoked = await client.delete(f"/api/v1/admin/tokens/{bobs['id']}", headers=session)
    refused = await client.get("/api/v1/me/tokens", headers=bearer(bobs["token"]))

    assert listed.status_code == 200
    tokens = listed.json()["tokens"]
    assert [(t["id"], t["email"], t["name"]) for t in tokens] == [
        (alices["id"], "alice@example.com", "alice-ci"),
        (bobs["id"], "bob@example.com", "bob-ci"),
    ]
    assert bobs["token"] not in listed.text
    assert (without_csrf.status_code, without_csrf.json()["error"]["code"]) == (403, "csrf_failed")
    assert revoked.status_code == 204
    assert refused.status_code == 401
    (event,) = [e["event"] for e in await audit_entries(client, type="token.revoked")]
    assert event["detail"] == {"by": "admin", "credential_id": bobs["id"]}
    assert event["actor"] == {"email": "alice@example.com", "subject": "alice-sub"}


async def test_policy_shows_the_rules_in_force_and_no_secret_setting(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    answer = await client.get("/api/v1/admin/policy", headers=await admin(memory_store, clock))

    assert answer.status_code == 200
    body = answer.json()
    assert body["source"] == "configuration"
    assert body["sections"]["admin"]["groups"] == ["admins"]
    assert body["sections"]["admin"]["admin_token_set"] is True
    assert body["sections"]["secrets"]["max_ttl"] == 30 * 86400
    assert ADMIN_TOKEN not in answer.text
    assert SIGN_IN["oidc_client_secret"] not in answer.text


async def test_the_console_page_is_served_with_its_script(client: httpx.AsyncClient) -> None:
    page = await client.get("/admin")

    assert page.status_code == 200
    assert 'src="./static/js/admin.js"' in page.text
    assert '<option value="secret.viewed">' in page.text


async def test_a_team_s_secrets_are_found_by_team_in_search_and_activity(
    memory_store: MemoryStore, clock: FrozenClock
) -> None:
    settings = load_settings(
        store="memory://",
        admin_groups=["admins"],
        teams={"sales": {"max_views": 5}, "engineering": {"max_views": 10}},
        **SIGN_IN,
    )
    app = create_app(settings, memory_store, clock)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://burnlink.test") as client,
    ):
        bob = await sign_in(memory_store, clock.now(), subject="bob-sub", email="bob@example.com",
                            groups=("sales",))  # fmt: skip
        sales = (await client.post("/api/v1/secrets", json={"secret": "s"}, headers=bob)).json()
        anonymous = (await client.post("/api/v1/secrets", json={"secret": "a"})).json()
        clock.advance(3600)
        for made in (sales, anonymous):  # the sales secret's view happens an hour later
            key = made["url"].split("#")[1]
            viewed = await client.post(f"/api/v1/secrets/{made['id']}/reveal", json={"key": key})
            assert viewed.status_code == 200
        clock.advance(60)  # the period ends now, exclusive: the views lie a minute before
        session = await admin(memory_store, clock)
        found = await client.get("/api/v1/audit", params={"team": "sales"}, headers=session)
        nobody = await client.get("/api/v1/audit", params={"team": "engineering"}, headers=session)
        hourly = await client.get(
            "/api/v1/admin/activity",
            params={"team": "sales", "bucket": "hour",
                    "since": (clock.now() - timedelta(hours=2)).isoformat()},
            headers=session,
        )  # fmt: skip

    assert found.status_code == 200, found.text
    events = [e["event"] for e in found.json()["entries"]]
    assert [e["type"] for e in events] == ["secret.created", "secret.viewed"]
    assert {e["secret_hash"] for e in events} == {secret_hash(sales["id"])}
    assert json.loads(events[0]["detail"]["teams"]) == ["sales"]
    assert nobody.json()["entries"] == []
    counts = [(b["created"], b["viewed"]) for b in hourly.json()["buckets"]]
    assert counts == [(0, 0), (1, 0), (0, 1)]
