"""Secrets bound to recipients (issue 15 §1), through the real app: who may reveal once signed
in (email, group and domain entries; by session or API token), ``require_mfa`` with a fresh
second-factor sign-in, the refusals (401 with a login link back to the secret, 403), the order
of the checks, the audit trail, and a stored policy that older processes cannot reveal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from burnlink.audit.events import AuditEventType, secret_hash
from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.crypto import Payload, derive_keys, open_envelope, seal
from burnlink.envelope import Envelope
from burnlink.ids import b64url_encode
from burnlink.models import RECIPIENTS_GUARD, AccessPolicy
from burnlink.policy import ip_allowed
from burnlink.store.memory import MemoryStore
from burnlink.store.secrets import NO_RULES_PREFIX
from tests.web.audited import DE, FR, Audited, audited_app, audited_settings
from tests.web.signed_in import SIGN_IN, bearer, make_token, sign_in

pytestmark = pytest.mark.anyio

ALICE: dict[str, Any] = {
    "subject": "alice-sub",
    "email": "alice@example.com",
    "groups": ("engineering",),
}
MALLORY: dict[str, Any] = {
    "subject": "mallory-sub",
    "email": "mallory@other.test",
    "groups": ("sales",),
}


@pytest.fixture
def settings() -> Settings:
    return load_settings(store="memory://", max_bytes=64 * 1024, **SIGN_IN)


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/secrets", json={"secret": "s3cret", **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def reveal(
    client: httpx.AsyncClient,
    created: dict[str, Any],
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    body = {"key": str(created["url"]).split("#", 1)[1], **extra}
    return await client.post(
        f"/api/v1/secrets/{created['id']}/reveal", json=body, headers=headers or {}
    )


async def views_left(store: MemoryStore, clock: FrozenClock, secret_id: str) -> int | None:
    meta = await store.peek(secret_id, now=clock.now())
    return None if meta is None else meta.views_left


# -- creating -----------------------------------------------------------------------------


async def test_recipients_are_normalised_and_kept_in_the_policy(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(
        client,
        recipients=[
            " Alice@Example.COM ",
            "group:Site Reliability",
            "domain:Example.ORG",
            "alice@example.com",
        ],
        require_mfa=True,
    )

    meta = await memory_store.peek(created["id"], now=clock.now())
    assert meta is not None
    assert meta.policy.recipients == (
        "alice@example.com",
        "group:Site Reliability",
        "domain:example.org",
    )
    assert meta.policy.require_mfa is True
    assert not meta.policy.is_empty()


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        pytest.param({"recipients": ["not an address"]}, "recipients", "group:NAME", id="entry"),
        pytest.param({"recipients": ["group:"]}, "recipients", "group name", id="empty-group"),
        pytest.param(
            {"recipients": ["domain:exa mple.com"]}, "recipients", "domain name", id="bad-domain"
        ),
        pytest.param(
            {"recipients": ["domain:localhost"]}, "recipients", "domain name", id="bare-domain"
        ),
        pytest.param(
            {"recipients": [f"u{i}@example.com" for i in range(21)]},
            "recipients",
            "at most 20",
            id="21",
        ),
        pytest.param(
            {"recipients": ["a" * 250 + "@example.com"]}, "recipients.0", "254", id="long"
        ),
        pytest.param({"recipients": "a@example.com"}, "recipients", "valid list", id="not-list"),
        pytest.param({"require_mfa": True}, "require_mfa", "recipients", id="mfa-alone"),
        pytest.param(
            {"recipients": ["alice@example.com"], "require_mfa": "yes"},
            "require_mfa",
            "boolean",
            id="str",
        ),
    ],
)
async def test_bad_recipients_are_422_naming_the_field(
    client: httpx.AsyncClient, fields: dict[str, Any], field: str, reason: str
) -> None:
    response = await client.post("/api/v1/secrets", json={"secret": "s", **fields})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_field", field)
    assert reason in error["message"]


async def test_recipients_need_sign_in_configured(memory_store: MemoryStore) -> None:
    from burnlink.web.app import create_app

    off = load_settings(store="memory://", max_bytes=64 * 1024)
    app = create_app(off, memory_store, FrozenClock())
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://burnlink.test") as client,
    ):
        refused = await client.post(
            "/api/v1/secrets", json={"secret": "s", "recipients": ["alice@example.com"]}
        )
        policy = await client.get("/api/v1/policy")

    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "recipients"
    assert "BURNLINK_OIDC_ISSUER" in refused.json()["error"]["message"]
    assert policy.json()["recipients"] is False


async def test_the_server_policy_says_recipients_can_be_used(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/policy")).json()["recipients"] is True


# -- revealing ------------------------------------------------------------------------------


async def test_anonymous_is_asked_to_sign_in_and_comes_back_to_the_secret(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(client, recipients=["alice@example.com"])

    refused = await reveal(client, created)

    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error["code"] == "login_required"
    url = urlsplit(error["login_url"])
    assert url.path == "/auth/login"
    assert parse_qs(url.query)["next"] == [f"/s/{created['id']}"]
    assert await views_left(memory_store, clock, created["id"]) == 1


@pytest.mark.parametrize(
    "entry",
    ["alice@example.com", "ALICE@example.com", "group:engineering", "domain:example.com"],
)
async def test_the_right_user_opens_it_by_email_group_or_domain(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock, entry: str
) -> None:
    created = await create(client, recipients=[entry])
    alice = await sign_in(memory_store, clock.now(), **ALICE)

    opened = await reveal(client, created, alice)

    assert opened.status_code == 200, opened.text
    assert opened.json()["secret"] == "s3cret"


@pytest.mark.parametrize(
    "entry",
    ["alice@example.com", "group:engineering", "domain:example.com"],
)
async def test_another_user_is_refused_with_403_and_nothing_is_consumed(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock, entry: str
) -> None:
    created = await create(client, recipients=[entry])
    mallory = await sign_in(memory_store, clock.now(), **MALLORY)

    refused = await reveal(client, created, mallory)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "recipient_mismatch"
    assert await views_left(memory_store, clock, created["id"]) == 1


async def test_a_user_of_another_group_is_refused(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(client, recipients=["group:engineering"])
    sales = await sign_in(
        memory_store, clock.now(), subject="bob", email="bob@example.com", groups=("sales",)
    )
    # A group is matched by name exactly, never by case or as a prefix.
    eng = await sign_in(
        memory_store, clock.now(), subject="carol", email="c@x.test", groups=("Engineering",)
    )

    assert (await reveal(client, created, sales)).status_code == 403
    assert (await reveal(client, created, eng)).status_code == 403
    assert await views_left(memory_store, clock, created["id"]) == 1


async def test_a_domain_entry_does_not_match_a_subdomain_or_an_unverified_email(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(client, recipients=["domain:example.com"])
    sub = await sign_in(memory_store, clock.now(), subject="s", email="s@dev.example.com")
    none = await sign_in(memory_store, clock.now(), subject="n", email=None, groups=())

    assert (await reveal(client, created, sub)).status_code == 403
    assert (await reveal(client, created, none)).status_code == 403


async def test_an_api_token_reveals_for_its_user(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(client, recipients=["alice@example.com"])
    alice = await sign_in(memory_store, clock.now(), **ALICE)
    # Any scope will do: the token acts for its user, who may reveal what is meant for them.
    token = await make_token(client, alice, scopes=["secrets:read-receipts"])
    mallory = await sign_in(memory_store, clock.now(), **MALLORY)
    other = await make_token(client, mallory, scopes=["secrets:create"])

    refused = await reveal(client, created, bearer(other["token"]))
    bad = await reveal(client, created, bearer("blk_" + "x" * 40))
    opened = await reveal(client, created, bearer(token["token"]))

    assert refused.status_code == 403
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_token"
    assert opened.status_code == 200, opened.text


async def test_a_cookie_reveal_needs_the_csrf_header(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(client, recipients=["alice@example.com"])
    alice = await sign_in(memory_store, clock.now(), **ALICE)

    refused = await reveal(client, created, {"cookie": alice["cookie"]})

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert await views_left(memory_store, clock, created["id"]) == 1


async def test_a_secret_without_recipients_ignores_a_bad_token(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client)

    opened = await reveal(client, created, bearer("blk_" + "x" * 40))

    assert opened.status_code == 200


# -- require_mfa ----------------------------------------------------------------------------


async def test_require_mfa_opens_for_a_fresh_second_factor_sign_in(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(client, recipients=["alice@example.com"], require_mfa=True)
    alice = await sign_in(memory_store, clock.now(), **ALICE, signed_in_ago=timedelta(minutes=4))

    opened = await reveal(client, created, alice)

    assert opened.status_code == 200, opened.text


async def test_require_mfa_sends_a_stale_sign_in_to_sign_in_again(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(client, recipients=["alice@example.com"], require_mfa=True)
    alice = await sign_in(memory_store, clock.now(), **ALICE, signed_in_ago=timedelta(minutes=6))

    refused = await reveal(client, created, alice)

    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error["code"] == "fresh_login_required"
    query = parse_qs(urlsplit(error["login_url"]).query)
    assert query["max_age"] == ["300"]
    assert query["next"] == [f"/s/{created['id']}"]
    assert await views_left(memory_store, clock, created["id"]) == 1


async def test_require_mfa_refuses_a_sign_in_without_a_second_factor_and_a_token(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(client, recipients=["alice@example.com"], require_mfa=True)
    without = await sign_in(memory_store, clock.now(), **ALICE, mfa=False)
    alice = await sign_in(memory_store, clock.now(), **ALICE)
    token = await make_token(client, alice)

    no_mfa = await reveal(client, created, without)
    by_token = await reveal(client, created, bearer(token["token"]))

    assert no_mfa.status_code == by_token.status_code == 403
    assert no_mfa.json()["error"]["code"] == by_token.json()["error"]["code"] == "mfa_required"
    assert await views_left(memory_store, clock, created["id"]) == 1


# -- end-to-end mode ------------------------------------------------------------------------


async def test_e2e_consume_checks_the_session_or_a_token_in_x_burnlink_token(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    key = bytes(range(32))
    sealed = seal(Payload(b"e2e"), key, passphrase=None)
    body = {
        "envelope": sealed.envelope.to_json(),
        "access_token": b64url_encode(sealed.keys.access_token),
        "recipients": ["group:engineering"],
        "max_views": 3,
    }
    made = await client.post("/api/v1/secrets", json=body)
    assert made.status_code == 201, made.text
    secret_id = made.json()["id"]
    access = bearer(b64url_encode(derive_keys(key).access_token))
    alice = await sign_in(memory_store, clock.now(), **ALICE)
    mallory = await sign_in(memory_store, clock.now(), **MALLORY)
    token = await make_token(client, alice)
    url = f"/api/v1/secrets/{secret_id}/consume"

    anonymous = await client.post(url, headers=access, json={})
    other = await client.post(url, headers={**access, **mallory}, json={})
    by_session = await client.post(url, headers={**access, **alice}, json={})
    by_token = await client.post(url, headers={**access, "x-burnlink-token": token["token"]})

    info = await client.get(f"/api/v1/secrets/{secret_id}", headers=access)
    assert info.json()["sign_in"] == {"require_mfa": False}
    assert "engineering" not in info.text
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "login_required"
    assert other.status_code == 403
    assert by_session.status_code == 200, by_session.text
    assert by_token.status_code == 200, by_token.text
    opened = open_envelope(Envelope.from_json(by_token.json()["envelope"]), derive_keys(key))
    assert opened.content == b"e2e"
    assert by_token.json()["views_left"] == 1


# -- the order of the checks, and the audit -----------------------------------------------


@pytest.fixture
async def audited(tmp_path: Path) -> AsyncIterator[Audited]:
    async with audited_app(
        f"sqlite://{tmp_path / 'audit.db'}", audited_settings(**SIGN_IN)
    ) as harness:
        yield harness


async def test_a_wrong_identity_spends_no_passphrase_attempt_and_sends_no_code(
    audited: Audited,
) -> None:
    client = audited.client(DE)
    created = await create(
        client,
        passphrase="right",
        recipients=["alice@example.com"],
        recipient_email="alice@example.com",
    )
    mallory = await sign_in(audited.store, audited.clock.now(), **MALLORY)
    alice = await sign_in(audited.store, audited.clock.now(), **ALICE)

    for _ in range(3):  # more than the two passphrase attempts the harness allows
        refused = await reveal(client, created, mallory, passphrase="wrong")
        assert refused.json()["error"]["code"] == "recipient_mismatch"
    anonymous = await reveal(client, created, passphrase="wrong")
    meta = await audited.store.peek(created["id"], now=audited.clock.now())
    asked = await reveal(client, created, alice)  # the code comes only now
    code = audited.mailbox.codes[-1]
    opened = await reveal(client, created, alice, otp=code, passphrase="right")

    assert anonymous.json()["error"]["code"] == "login_required"
    assert meta is not None
    assert meta.attempts_left == 2
    assert asked.json()["error"]["code"] == "verification_required"
    assert len(audited.mailbox.codes) == 1
    assert opened.status_code == 200, opened.text


async def test_address_and_country_rules_come_before_the_identity(audited: Audited) -> None:
    de, fr = audited.client(DE), audited.client(FR)
    by_ip = await create(de, allowed_ips=[DE + "/32"], recipients=["alice@example.com"])
    by_country = await create(de, denied_countries=["FR"], recipients=["alice@example.com"])
    alice = await sign_in(audited.store, audited.clock.now(), **ALICE)

    ip = await reveal(fr, by_ip, alice)
    country = await reveal(fr, by_country, alice)
    anonymous = await reveal(fr, by_country)

    assert ip.json()["error"]["code"] == "ip_denied"
    assert country.json()["error"]["code"] == anonymous.json()["error"]["code"] == "geo_denied"


async def test_refusals_and_the_view_name_the_user_in_the_audit(audited: Audited) -> None:
    client = audited.client(DE)
    created = await create(client, recipients=["alice@example.com"])
    mallory = await sign_in(audited.store, audited.clock.now(), **MALLORY)
    alice = await sign_in(audited.store, audited.clock.now(), **ALICE)

    refused = await reveal(client, created, mallory)
    opened = await reveal(client, created, alice)
    await audited.join()
    entries = [e.event for e in await audited.entries()]

    assert (refused.status_code, opened.status_code) == (403, 200)
    mine = [e for e in entries if e.secret_hash == secret_hash(created["id"])]
    denied = [e.to_dict() for e in mine if e.type is AuditEventType.ACCESS_DENIED_IDENTITY]
    viewed = [e.to_dict() for e in mine if e.type is AuditEventType.SECRET_VIEWED]
    assert len(denied) == 1
    assert denied[0]["actor"] == {"subject": "mallory-sub", "email": "mallory@other.test"}
    assert denied[0]["outcome"] == "denied"
    assert denied[0]["policy"]["rule"] == "recipients"
    assert denied[0]["policy"]["recipients"] == "a***@example.com"
    assert len(viewed) == 1
    assert viewed[0]["actor"] == {"subject": "alice-sub", "email": "alice@example.com"}
    assert viewed[0]["policy"]["recipients"] == "a***@example.com"
    text = json.dumps([e.to_dict() for e in entries])
    assert "s3cret" not in text


async def test_a_refused_identity_counts_as_a_failed_reveal(audited: Audited) -> None:
    client = audited.client(DE)
    created = await create(client, recipients=["alice@example.com"], max_views=5)
    mallory = await sign_in(audited.store, audited.clock.now(), **MALLORY)

    before = await audited.service.unlock(DE)
    await reveal(client, created, mallory)
    cleared = await audited.service.unlock(DE, secret_ids=(created["id"],))

    assert before == 0
    assert cleared >= 1


# -- the receipt names the recipient -------------------------------------------------------


async def receipt_of(client: httpx.AsyncClient, created: dict[str, Any]) -> dict[str, Any]:
    """The sender's receipt, through the manage link's token."""
    manage = str(created["manage_url"]).split("#", 1)[1]
    response = await client.get(f"/api/v1/secrets/{created['id']}/receipt", headers=bearer(manage))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_receipt_names_the_recipient_who_viewed_and_tried(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    """The lines a signed-in recipient made (a wrong passphrase, the view) carry
    ``viewer``: their email and whether their sign-in had a second factor; the refused
    non-recipient and the create name nobody, and neither subject nor groups show."""
    created = await create(client, recipients=["alice@example.com"], passphrase="right")
    mallory = await sign_in(memory_store, clock.now(), **MALLORY)
    alice = await sign_in(memory_store, clock.now(), **ALICE, mfa=True)

    refused = await reveal(client, created, mallory, passphrase="right")
    wrong = await reveal(client, created, alice, passphrase="wrong")
    opened = await reveal(client, created, alice, passphrase="right")
    receipt = await receipt_of(client, created)

    assert (refused.status_code, wrong.status_code, opened.status_code) == (403, 403, 200)
    alice_mfa = {"email": "alice@example.com", "mfa": True}
    assert [(e["type"], e["viewer"]) for e in receipt["events"]] == [
        ("created", None),
        ("wrong_passphrase", alice_mfa),
        ("viewed", alice_mfa),
    ]
    assert "alice-sub" not in json.dumps(receipt)
    assert "mallory" not in json.dumps(receipt)


async def test_the_receipt_says_when_the_recipients_sign_in_had_no_second_factor(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    created = await create(client, recipients=["group:engineering"])
    alice = await sign_in(memory_store, clock.now(), **{**ALICE, "email": None}, mfa=False)

    opened = await reveal(client, created, alice)
    receipt = await receipt_of(client, created)

    assert opened.status_code == 200, opened.text
    assert receipt["events"][-1]["viewer"] == {"email": None, "mfa": False}


async def test_a_view_of_a_secret_without_recipients_names_nobody(
    client: httpx.AsyncClient, memory_store: MemoryStore, clock: FrozenClock
) -> None:
    """Who is signed in is asked only for a secret bound to recipients: other views stay
    anonymous on the receipt, as before."""
    created = await create(client, max_views=2)
    alice = await sign_in(memory_store, clock.now(), **ALICE)

    await reveal(client, created, alice)
    await reveal(client, created)
    receipt = await receipt_of(client, created)

    assert [(e["type"], e["viewer"]) for e in receipt["events"]] == [
        ("created", None),
        ("viewed", None),
        ("viewed", None),
    ]


async def test_a_recipients_one_time_code_lines_name_them(audited: Audited) -> None:
    """A secret bound to recipients and to a mailed code: the code's lines (sent, wrong,
    confirmed) name the recipient who asked, as the view does."""
    client = audited.client(DE)
    created = await create(
        client, recipients=["alice@example.com"], recipient_email="alice@example.com"
    )
    alice = await sign_in(audited.store, audited.clock.now(), **ALICE)

    asked = await reveal(client, created, alice)
    code = audited.mailbox.codes[-1]
    wrong = await reveal(client, created, alice, otp="000000" if code != "000000" else "111111")
    opened = await reveal(client, created, alice, otp=code)
    receipt = await receipt_of(client, created)

    assert asked.json()["error"]["code"] == "verification_required"
    assert wrong.json()["error"]["code"] == "verification_failed"
    assert opened.status_code == 200, opened.text
    alice_mfa = {"email": "alice@example.com", "mfa": True}
    assert [(e["type"], e["viewer"]) for e in receipt["events"]] == [
        ("created", None),
        ("verification_sent", alice_mfa),
        ("verification_failed", alice_mfa),
        ("verified", alice_mfa),
        ("viewed", alice_mfa),
    ]


# -- older processes ---------------------------------------------------------------------------


def old_release_decode(data: bytes) -> AccessPolicy:
    """How the release before this one decoded a stored policy: it knew no ``recipients``."""
    obj = json.loads(data)
    return AccessPolicy(
        allowed_ips=tuple(obj["allowed_ips"]),
        allowed_countries=tuple(obj["allowed_countries"]),
        denied_countries=tuple(obj["denied_countries"]),
        recipient_email=obj["recipient_email"],
        notify_url=obj.get("notify_url"),
        creator_country=obj.get("creator_country"),
    )


@pytest.mark.parametrize("ips", [(), ("198.51.100.0/24",), ("0.0.0.0/0", "::/0")])
def test_an_older_process_fails_closed_on_a_policy_with_recipients(ips: tuple[str, ...]) -> None:
    policy = AccessPolicy(allowed_ips=ips, recipients=("alice@example.com",), require_mfa=True)
    stored = policy.to_bytes()

    old = old_release_decode(stored)

    # Not the one-trip reveal: neither by the stores' prefix nor by ``is_empty``...
    assert not stored.startswith(NO_RULES_PREFIX)
    assert not old.is_empty()
    assert old.allowed_ips[0] == RECIPIENTS_GUARD
    # ... and its address check fails for every client, whatever networks the sender allowed.
    for client in ("198.51.100.7", "2001:db8::1", None):
        with pytest.raises(ValueError, match="does not appear to be"):
            ip_allowed(client, old.allowed_ips)
    # This release reads it back as it was written.
    assert AccessPolicy.from_bytes(stored) == policy


def test_a_policy_without_recipients_is_stored_as_before() -> None:
    policy = AccessPolicy(allowed_ips=("198.51.100.0/24",))

    assert RECIPIENTS_GUARD.encode() not in policy.to_bytes()
    assert old_release_decode(policy.to_bytes()) == policy


def test_a_policy_with_recipients_but_no_guard_is_refused() -> None:
    forged = (
        b'{"allowed_ips":[],"allowed_countries":[],"denied_countries":[],'
        b'"recipient_email":null,"recipients":["a@example.com"],"require_mfa":false}'
    )

    with pytest.raises(ValueError, match="guard"):
        AccessPolicy.from_bytes(forged)
