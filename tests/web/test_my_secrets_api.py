""" "My secrets" through the real app: each signed-in sender sees and burns only their own
secrets, tokens are held to their scopes, and the audit log, the receipt and the webhook name
the sender who acted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from burnlink.audit.events import AuditEventType, secret_hash
from burnlink.audit.export import export_lines
from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.ids import new_secret_id
from burnlink.store.memory import MemoryStore
from tests.hooks import Receiver, webhook_receiver
from tests.web.audited import ADMIN_TOKEN, Audited, audited_app, audited_settings
from tests.web.signed_in import SIGN_IN, bearer, make_token, sign_in

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings() -> Settings:
    return load_settings(store="memory://", max_bytes=64 * 1024, **SIGN_IN)


async def create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> str:
    response = await client.post("/api/v1/secrets", json={"secret": "s", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    secret_id: str = response.json()["id"]
    return secret_id


async def test_my_secrets_lists_only_the_users_own_newest_first(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    alice = await sign_in(memory_store, clock.now())
    bob = await sign_in(memory_store, clock.now(), subject="bob-sub", email="bob@example.com")
    first = await create(client, alice, label="first", max_views=3)
    clock.advance(1)
    second = await create(client, alice)
    await create(client, bob, label="bob's")
    await create(client, {})

    listed = (await client.get("/api/v1/me/secrets", headers=alice)).json()["secrets"]

    assert [s["id"] for s in listed] == [second, first]
    entry = listed[1]
    assert entry["label"] == "first"
    assert entry["state"] == "active"
    assert (entry["views_used"], entry["views_left"], entry["max_views"]) == (0, 3, 3)
    assert entry["last_event"] == "created"
    assert entry["receipt_url"] == f"/api/v1/me/secrets/{first}"
    assert "s" not in {entry.get("secret"), entry.get("content")}


async def test_my_secret_receipt_is_the_owners_only(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    alice = await sign_in(memory_store, clock.now())
    bob = await sign_in(memory_store, clock.now(), subject="bob-sub", email="bob@example.com")
    mine = await create(client, alice, label="db")

    receipt = await client.get(f"/api/v1/me/secrets/{mine}", headers=alice)
    by_bob = await client.get(f"/api/v1/me/secrets/{mine}", headers=bob)
    unknown = await client.get(f"/api/v1/me/secrets/{new_secret_id()}", headers=alice)
    malformed = await client.get("/api/v1/me/secrets/nope", headers=alice)

    assert receipt.status_code == 200
    body = receipt.json()
    assert body["label"] == "db"
    assert body["created_by"] == {"subject": "alice-sub", "email": "alice@example.com"}
    assert by_bob.status_code == unknown.status_code == malformed.status_code == 404
    assert by_bob.json() == unknown.json()


async def test_manage_link_receipt_names_the_creator_with_email(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    alice = await sign_in(memory_store, clock.now())
    response = await client.post("/api/v1/secrets", json={"secret": "s"}, headers=alice)
    manage = response.json()["manage_url"].split("#", 1)[1]
    anonymous = await client.post("/api/v1/secrets", json={"secret": "s"})
    anonymous_manage = anonymous.json()["manage_url"].split("#", 1)[1]

    owned = await client.get(
        f"/api/v1/secrets/{response.json()['id']}/receipt", headers=bearer(manage)
    )
    plain = await client.get(
        f"/api/v1/secrets/{anonymous.json()['id']}/receipt", headers=bearer(anonymous_manage)
    )

    assert owned.json()["created_by"] == {"subject": "alice-sub", "email": "alice@example.com"}
    assert plain.json()["created_by"] is None


async def test_receipt_names_the_email_the_creator_had_when_creating(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    """Signed in again with another email, the owner's receipt still names the one the
    secret was created with, through "my secrets" as through the manage link."""
    before = await sign_in(memory_store, clock.now(), email="alice@old.example")
    response = await client.post("/api/v1/secrets", json={"secret": "s"}, headers=before)
    secret_id, manage = response.json()["id"], response.json()["manage_url"].split("#", 1)[1]
    after = await sign_in(memory_store, clock.now(), email="alice@new.example")

    mine = await client.get(f"/api/v1/me/secrets/{secret_id}", headers=after)
    managed = await client.get(f"/api/v1/secrets/{secret_id}/receipt", headers=bearer(manage))

    assert mine.json()["created_by"] == {"subject": "alice-sub", "email": "alice@old.example"}
    assert managed.json() == mine.json()


async def test_burn_one_and_many_of_my_secrets(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    alice = await sign_in(memory_store, clock.now())
    bob = await sign_in(memory_store, clock.now(), subject="bob-sub", email="bob@example.com")
    one, two, three = [await create(client, alice) for _ in range(3)]
    bobs = await create(client, bob)

    single = await client.delete(f"/api/v1/me/secrets/{one}", headers=alice)
    not_mine = await client.delete(f"/api/v1/me/secrets/{bobs}", headers=alice)
    many = await client.post(
        "/api/v1/me/secrets/burn", json={"ids": [two, three, bobs, one]}, headers=alice
    )
    listed = (await client.get("/api/v1/me/secrets", headers=alice)).json()["secrets"]
    bobs_list = (await client.get("/api/v1/me/secrets", headers=bob)).json()["secrets"]

    assert single.status_code == 204
    assert not_mine.status_code == 404
    assert many.json() == {"burned": [two, three, one], "not_found": [bobs]}
    assert {s["state"] for s in listed} == {"burned"}
    assert {s["last_event"] for s in listed} == {"burned"}
    assert [s["state"] for s in bobs_list] == ["active"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"ids": []}, id="none"),
        pytest.param({"ids": ["x"]}, id="malformed"),
        pytest.param({"ids": ["A" * 22] * 101}, id="too-many"),
        pytest.param({"ids": ["A" * 22], "all": True}, id="unknown-member"),
    ],
)
async def test_burn_many_refuses_bad_bodies(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock, body: Any
) -> None:
    alice = await sign_in(memory_store, clock.now())

    response = await client.post("/api/v1/me/secrets/burn", json=body, headers=alice)

    assert response.status_code == 422


async def test_my_secrets_tokens_are_held_to_their_scopes(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    alice = await sign_in(memory_store, clock.now())
    secret_id = await create(client, alice)
    reader = await make_token(client, alice, scopes=["secrets:read-receipts"])
    burner = await make_token(client, alice, scopes=["secrets:burn"])

    read = await client.get("/api/v1/me/secrets", headers=bearer(reader["token"]))
    read_refused = await client.get("/api/v1/me/secrets", headers=bearer(burner["token"]))
    burn_refused = await client.delete(
        f"/api/v1/me/secrets/{secret_id}", headers=bearer(reader["token"])
    )
    burned = await client.delete(f"/api/v1/me/secrets/{secret_id}", headers=bearer(burner["token"]))

    assert read.status_code == 200
    assert [s["id"] for s in read.json()["secrets"]] == [secret_id]
    assert read_refused.status_code == burn_refused.status_code == 403
    assert read_refused.json()["error"]["scope"] == "secrets:read-receipts"
    assert burn_refused.json()["error"]["scope"] == "secrets:burn"
    assert burned.status_code == 204


async def test_my_secrets_needs_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me/secrets")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "login_required"


# -- the actor, in the audit log, its export and the webhook --------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
async def audited(tmp_path: Path) -> AsyncIterator[Audited]:
    async with audited_app(
        f"sqlite://{tmp_path / 'audit.db'}", audited_settings(**SIGN_IN)
    ) as harness:
        yield harness


async def test_audit_names_the_signed_in_actor_and_not_the_anonymous(
    audited: Audited, receiver: Receiver
) -> None:
    client = audited.client()
    alice = await sign_in(audited.store, audited.clock.now())
    hook = receiver.url()
    owned = await create(client, alice, notify_url=hook)
    anonymous = await create(client, {})

    burned = await client.delete(f"/api/v1/me/secrets/{owned}", headers=alice)
    await audited.join()  # the webhook delivered too
    entries = await audited.entries()

    assert burned.status_code == 204
    actor = {"email": "alice@example.com", "subject": "alice-sub"}
    by_secret = {
        (e.event.type, e.event.secret_hash): e.event.to_dict().get("actor") for e in entries
    }
    assert by_secret[(AuditEventType.SECRET_CREATED, secret_hash(owned))] == actor
    assert by_secret[(AuditEventType.SECRET_BURNED, secret_hash(owned))] == actor
    assert by_secret[(AuditEventType.SECRET_CREATED, secret_hash(anonymous))] is None
    lines = [line async for line in export_lines(audited.audit, "jsonl")]
    assert sum('"actor":{"email":"alice@example.com"' in line for line in lines) == 2
    csv = "".join([line async for line in export_lines(audited.audit, "csv")])
    assert csv.splitlines()[0].endswith("mac,actor_subject,actor_email")
    assert csv.count("alice-sub,alice@example.com") == 2
    (delivery,) = receiver.on("/hooks/burnlink")
    payload = json.loads(delivery.body)
    assert payload["type"] == "secret.burned"
    assert payload["data"]["actor"] == {"subject": "alice-sub", "email": "alice@example.com"}
    assert payload["text"].endswith("by alice@example.com.")


async def test_making_and_revoking_a_token_is_audited_without_the_token(
    audited: Audited,
) -> None:
    client = audited.client()
    alice = await sign_in(audited.store, audited.clock.now())
    made = await make_token(client, alice, name="deploy", scopes=["secrets:create"])
    second = await make_token(client, alice, name="spare")

    revoked = await client.delete(f"/api/v1/me/tokens/{made['id']}", headers=alice)
    by_admin = await client.delete(
        f"/api/v1/admin/tokens/{second['id']}",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    await audited.join()
    entries = [e.event.to_dict() for e in await audited.entries()]

    assert (revoked.status_code, by_admin.status_code) == (204, 204)
    actor = {"email": "alice@example.com", "subject": "alice-sub"}
    created = [e for e in entries if e["type"] == "token.created"]
    assert [(e["detail"]["credential_id"], e["detail"]["name"]) for e in created] == [
        (made["id"], "deploy"),
        (second["id"], "spare"),
    ]
    assert created[0]["detail"]["scopes"] == "secrets:create"
    assert all(e["actor"] == actor for e in created)
    ended = [e for e in entries if e["type"] == "token.revoked"]
    assert [(e["detail"]["credential_id"], e["detail"]["by"], e.get("actor")) for e in ended] == [
        (made["id"], "owner", actor),
        (second["id"], "admin", None),
    ]
    text = json.dumps(entries)
    assert made["token"] not in text
    assert second["token"] not in text
