"""The JSON API v1 as curl users and other clients rely on it (docs/api.md)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from burnlink.clock import FrozenClock
from burnlink.crypto import Payload, derive_keys, open_envelope, seal
from burnlink.envelope import MAX_HEADER_BYTES, TAG_BYTES, Envelope
from burnlink.ids import b64url_decode, b64url_encode, new_secret_id

pytestmark = pytest.mark.anyio
# The BURNLINK_MAX_BYTES of the test app (tests/web/conftest.py).
MAX_BYTES = 64 * 1024

GONE = {
    "error": {
        "code": "not_found",
        "message": "This secret does not exist, has expired, or has already been viewed.",
    }
}


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/secrets", json={"secret": "s3cret", **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def link_key(created: dict[str, Any]) -> str:
    return str(created["url"]).split("#", 1)[1]


def manage_token(created: dict[str, Any]) -> str:
    return str(created["manage_url"]).split("#", 1)[1]


async def reveal(
    client: httpx.AsyncClient, created: dict[str, Any], **extra: Any
) -> httpx.Response:
    body = {"key": link_key(created), **extra}
    return await client.post(f"/api/v1/secrets/{created['id']}/reveal", json=body)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# -- create -------------------------------------------------------------------------------


async def test_create_answers_links_expiry_and_views(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    created = await create(client)

    assert set(created) == {"id", "url", "manage_url", "expires_at", "max_views"}
    secret_id = created["id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", secret_id)
    assert re.fullmatch(rf"http://burnlink\.test/s/{secret_id}#[A-Za-z0-9_-]{{43}}", created["url"])
    assert re.fullmatch(
        rf"http://burnlink\.test/m/{secret_id}#[A-Za-z0-9_-]{{43}}", created["manage_url"]
    )
    expected = clock.now() + timedelta(seconds=86400)
    assert datetime.fromisoformat(created["expires_at"]) == expected
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created["expires_at"])
    assert created["max_views"] == 1


async def test_create_uses_base_url_setting(app: Any, client: httpx.AsyncClient) -> None:
    from burnlink.config import load_settings

    app.state.service.settings = load_settings(
        store="memory://", base_url="https://secrets.example.com/burn/"
    )

    created = await create(client)

    assert created["url"].startswith(f"https://secrets.example.com/burn/s/{created['id']}#")
    assert created["manage_url"].startswith(f"https://secrets.example.com/burn/m/{created['id']}#")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"ttl": 59}, "ttl", id="ttl-below-min"),
        pytest.param({"ttl": 30 * 86400 + 1}, "ttl", id="ttl-above-max"),
        pytest.param({"ttl": "3600"}, "ttl", id="ttl-as-string"),
        pytest.param({"ttl": 60.5}, "ttl", id="ttl-as-float"),
        pytest.param({"max_views": 0}, "max_views", id="no-views"),
        pytest.param({"max_views": 101}, "max_views", id="too-many-views"),
        pytest.param({"max_views": 10**40}, "max_views", id="huge-int"),
        pytest.param({"passphrase": ""}, "passphrase", id="empty-passphrase"),
        pytest.param({"secret": ""}, "secret", id="empty-secret"),
        pytest.param({"secret": None}, "body", id="no-secret-no-envelope"),
        pytest.param({"id": new_secret_id()}, "id", id="client-sets-id"),
        pytest.param({"views_left": 5}, "views_left", id="client-sets-counter"),
        pytest.param({"created_at": "2020-01-01T00:00:00Z"}, "created_at", id="client-sets-time"),
        pytest.param({"expires_at": "2099-01-01T00:00:00Z"}, "expires_at", id="client-sets-expiry"),
    ],
)
async def test_create_refuses_invalid_fields_naming_them(
    client: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/secrets", json={"secret": "x", **fields})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_field"
    assert error["field"] == field


async def test_create_accepts_the_bounds(client: httpx.AsyncClient) -> None:
    low = await create(client, ttl=60, max_views=1)
    high = await create(client, ttl=30 * 86400, max_views=100)

    assert (low["max_views"], high["max_views"]) == (1, 100)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("plain ascii", id="ascii"),
        pytest.param("Grüße 東京 🔑 مرحبا", id="mixed-scripts"),
        pytest.param("e\u0301 vs \u00e9", id="unnormalised"),
        pytest.param("nul\x00inside\r\nand\ttabs  ", id="control-chars"),
        pytest.param("\ufeffbom and \u2028 separators", id="bom"),
        pytest.param("x" * 60_000, id="long"),
    ],
)
async def test_any_unicode_secret_round_trips_exactly(client: httpx.AsyncClient, text: str) -> None:
    created = await create(client, secret=text)

    response = await reveal(client, created)

    assert response.status_code == 200
    assert response.json() == {"secret": text, "file": None, "views_left": 0}


async def test_oversized_secret_is_refused_with_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/secrets", json={"secret": "x" * (64 * 1024 + 1)})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("secret", "status"),
    [
        pytest.param("x" * MAX_BYTES, 201, id="ascii-at-limit"),
        pytest.param("x" * (MAX_BYTES + 1), 413, id="ascii-over"),
        pytest.param("é" * (MAX_BYTES // 2), 201, id="utf8-at-limit"),
        pytest.param("é" * (MAX_BYTES // 2) + "x", 413, id="utf8-over"),
    ],
)
async def test_secret_size_limit_counts_utf8_bytes(
    client: httpx.AsyncClient, secret: str, status: int
) -> None:
    response = await client.post("/api/v1/secrets", json={"secret": secret})

    assert response.status_code == status
    if status == 413:
        assert response.json()["error"] == {
            "code": "payload_too_large",
            "message": f"secret: larger than the limit of {MAX_BYTES} bytes",
            "field": "secret",
            "limit": MAX_BYTES,
        }


@pytest.mark.parametrize("token", ["1.0", "1e0", "true", '"1"'])
async def test_envelope_version_must_be_the_integer_token_1(
    client: httpx.AsyncClient, token: str
) -> None:
    """docs/crypto.md: the server refuses every spelling but ``1``, so readers only meet ``1``."""
    sealed = seal(Payload(b"x"), bytes(32))
    envelope = json.dumps(sealed.envelope.to_json()).replace('"v": 1,', f'"v": {token},')
    token_b64 = b64url_encode(sealed.keys.access_token)

    response = await client.post(
        "/api/v1/secrets",
        content=f'{{"envelope": {envelope}, "access_token": "{token_b64}"}}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_envelope"
    assert response.json()["error"]["field"] == "envelope.v"


@pytest.mark.parametrize(
    ("extra", "status"), [pytest.param(0, 201, id="at-bound"), pytest.param(1, 413, id="over")]
)
async def test_envelope_size_bound_is_the_limit_plus_the_header(
    client: httpx.AsyncClient, extra: int, status: int
) -> None:
    """The server cannot see the header: it allows max_bytes of content plus a full header."""
    header = b'{"type":"text"}\n'
    content = b"x" * (MAX_BYTES + MAX_HEADER_BYTES - len(header) + extra)
    sealed = seal(Payload(content), bytes(32))
    assert len(sealed.envelope.ciphertext) - TAG_BYTES == MAX_BYTES + MAX_HEADER_BYTES + extra

    response = await client.post(
        "/api/v1/secrets",
        json={
            "envelope": sealed.envelope.to_json(),
            "access_token": b64url_encode(sealed.keys.access_token),
        },
    )

    assert response.status_code == status, response.text
    if status == 413:
        assert response.json()["error"]["field"] == "envelope.ct"
        assert response.json()["error"]["limit"] == MAX_BYTES


# -- reveal -------------------------------------------------------------------------------


async def test_reveal_burns_after_the_last_view(client: httpx.AsyncClient) -> None:
    created = await create(client, max_views=3)

    answers = [(await reveal(client, created)).json() for _ in range(3)]
    after = await reveal(client, created)

    assert [a["views_left"] for a in answers] == [2, 1, 0]
    assert all(a["secret"] == "s3cret" for a in answers)
    assert (after.status_code, after.json()) == (404, GONE)


async def test_reveal_answers_identically_for_every_kind_of_gone(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Unknown, malformed, wrong key, used up, expired and burned look the same."""
    used = await create(client)
    await reveal(client, used)
    expired = await create(client, ttl=60)
    burned = await create(client)
    await client.delete(f"/api/v1/secrets/{burned['id']}", headers=bearer(manage_token(burned)))
    live = await create(client)
    clock.advance(60)

    attempts = [
        await client.post(f"/api/v1/secrets/{new_secret_id()}/reveal", json={"key": "A" * 43}),
        await client.post("/api/v1/secrets/not-an-id!/reveal", json={"key": link_key(live)}),
        await client.post(f"/api/v1/secrets/{'x' * 5000}/reveal", json={"key": "A" * 43}),
        await client.post(f"/api/v1/secrets/{live['id']}/reveal", json={"key": "A" * 43}),
        await client.post(f"/api/v1/secrets/{live['id']}/reveal", json={"key": "short"}),
        await client.post(f"/api/v1/secrets/{live['id']}/reveal", json={"key": "A" * 42 + "="}),
        await reveal(client, used),
        await reveal(client, expired),
        await reveal(client, burned),
    ]

    assert [(r.status_code, r.json()) for r in attempts] == [(404, GONE)] * len(attempts)
    assert len({r.content for r in attempts}) == 1


async def test_reveal_with_wrong_key_counts_nothing(client: httpx.AsyncClient) -> None:
    created = await create(client)

    for _ in range(10):
        await client.post(f"/api/v1/secrets/{created['id']}/reveal", json={"key": "B" * 43})

    assert (await reveal(client, created)).json()["secret"] == "s3cret"


async def test_expired_secret_is_never_revealed_before_the_sweep(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    created = await create(client, ttl=60, max_views=5)
    clock.advance(59.999)
    assert (await reveal(client, created)).status_code == 200

    clock.advance(0.001)

    assert (await reveal(client, created)).status_code == 404


async def test_get_on_reveal_url_is_405_and_consumes_nothing(client: httpx.AsyncClient) -> None:
    created = await create(client)

    response = await client.get(f"/api/v1/secrets/{created['id']}/reveal")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert (await reveal(client, created)).status_code == 200


async def test_opening_the_link_page_consumes_nothing(client: httpx.AsyncClient) -> None:
    """Chat and mail scanners fetch links; they must not burn the secret."""
    created = await create(client)
    path = created["url"].split("http://burnlink.test", 1)[1].split("#")[0]

    for agent in ["Slackbot-LinkExpanding 1.0", "Mozilla/5.0", "curl/8.5"]:
        page = await client.get(path, headers={"user-agent": agent})
        assert page.status_code == 200
        assert "s3cret" not in page.text

    assert (await reveal(client, created)).json()["secret"] == "s3cret"


# -- passphrase ---------------------------------------------------------------------------


async def test_passphrase_missing_is_403_and_not_counted(client: httpx.AsyncClient) -> None:
    created = await create(client, passphrase="correct horse")

    for _ in range(7):
        response = await reveal(client, created)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "passphrase_required"
        assert response.json()["error"]["attempts_left"] == 5

    assert (await reveal(client, created, passphrase="correct horse")).status_code == 200


async def test_wrong_passphrases_count_down_and_the_last_burns(client: httpx.AsyncClient) -> None:
    created = await create(client, passphrase="correct horse", max_views=3)

    answers = [await reveal(client, created, passphrase=f"guess {i}") for i in range(5)]
    after = await reveal(client, created, passphrase="correct horse")

    assert [r.status_code for r in answers] == [403] * 5
    assert [r.json()["error"]["attempts_left"] for r in answers] == [4, 3, 2, 1, 0]
    assert {r.json()["error"]["code"] for r in answers} == {"wrong_passphrase"}
    assert (after.status_code, after.json()) == (404, GONE)


async def test_right_passphrase_after_wrong_ones_reveals(client: httpx.AsyncClient) -> None:
    created = await create(client, passphrase="pässwörd", secret="behind a passphrase")

    assert (await reveal(client, created, passphrase="nope")).status_code == 403
    response = await reveal(client, created, passphrase="pässwörd")

    assert response.json()["secret"] == "behind a passphrase"


async def test_passphrase_is_checked_only_after_the_key(client: httpx.AsyncClient) -> None:
    """Without the key, a passphrase guess learns nothing and costs the secret nothing."""
    created = await create(client, passphrase="right")

    wrong_key = await client.post(
        f"/api/v1/secrets/{created['id']}/reveal", json={"key": "C" * 43, "passphrase": "x"}
    )

    assert (wrong_key.status_code, wrong_key.json()) == (404, GONE)
    assert (await reveal(client, created, passphrase="x")).json()["error"]["attempts_left"] == 4


# -- end-to-end mode ----------------------------------------------------------------------


async def e2e_create(
    client: httpx.AsyncClient, passphrase: str | None = None, **fields: Any
) -> tuple[dict[str, Any], bytes]:
    key = bytes(range(32))
    sealed = seal(
        Payload(b"\x00binary\xff", is_file=True, name="k.bin"), key, passphrase=passphrase
    )
    body: dict[str, Any] = {
        "envelope": sealed.envelope.to_json(),
        "access_token": b64url_encode(sealed.keys.access_token),
        **fields,
    }
    if sealed.keys.passphrase_proof:
        body["passphrase_proof"] = b64url_encode(sealed.keys.passphrase_proof)
    response = await client.post("/api/v1/secrets", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created, key


async def test_e2e_create_info_consume_round_trip(client: httpx.AsyncClient) -> None:
    created, key = await e2e_create(client, max_views=2)
    assert "#" not in created["url"]
    token = b64url_encode(derive_keys(key).access_token)

    info = await client.get(f"/api/v1/secrets/{created['id']}", headers=bearer(token))
    again = await client.get(f"/api/v1/secrets/{created['id']}", headers=bearer(token))
    consumed = await client.post(
        f"/api/v1/secrets/{created['id']}/consume", headers=bearer(token), json={}
    )

    assert info.status_code == 200
    assert info.json()["views_left"] == again.json()["views_left"] == 2
    assert info.json()["passphrase"] is None
    assert consumed.status_code == 200
    assert consumed.json()["views_left"] == 1
    payload = open_envelope(Envelope.from_json(consumed.json()["envelope"]), derive_keys(key))
    assert (payload.content, payload.name) == (b"\x00binary\xff", "k.bin")


async def test_e2e_consume_without_body_is_accepted(client: httpx.AsyncClient) -> None:
    created, key = await e2e_create(client)
    token = b64url_encode(derive_keys(key).access_token)

    response = await client.post(f"/api/v1/secrets/{created['id']}/consume", headers=bearer(token))

    assert response.status_code == 200


async def test_e2e_passphrase_proof_is_enforced(client: httpx.AsyncClient) -> None:
    created, key = await e2e_create(client, passphrase="pw")
    token = b64url_encode(derive_keys(key).access_token)
    url = f"/api/v1/secrets/{created['id']}"

    info = (await client.get(url, headers=bearer(token))).json()
    missing = await client.post(f"{url}/consume", headers=bearer(token), json={})
    wrong = await client.post(
        f"{url}/consume", headers=bearer(token), json={"passphrase_proof": "A" * 43}
    )
    gate = info["passphrase"]
    keys = derive_keys(
        key,
        passphrase="pw",
        salt=b64url_decode(gate["salt"], field="salt"),
        iterations=gate["iterations"],
    )
    assert keys.passphrase_proof is not None
    right = await client.post(
        f"{url}/consume",
        headers=bearer(token),
        json={"passphrase_proof": b64url_encode(keys.passphrase_proof)},
    )

    assert gate["kdf"] == "pbkdf2-sha256"
    assert gate["iterations"] >= 600_000
    assert missing.json()["error"]["code"] == "passphrase_required"
    assert wrong.json()["error"] == {
        "code": "wrong_passphrase",
        "message": "Wrong passphrase.",
        "attempts_left": 4,
    }
    assert right.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param(bearer("E" * 43), id="wrong-token"),
        pytest.param(bearer("short"), id="malformed-token"),
        pytest.param({"authorization": "Basic Zm9vOmJhcg=="}, id="other-scheme"),
    ],
)
async def test_e2e_info_and_consume_without_the_access_token_are_404(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    created, key = await e2e_create(client)

    info = await client.get(f"/api/v1/secrets/{created['id']}", headers=headers)
    consume = await client.post(f"/api/v1/secrets/{created['id']}/consume", headers=headers)

    assert (info.status_code, info.json()) == (404, GONE)
    assert (consume.status_code, consume.json()) == (404, GONE)
    token = b64url_encode(derive_keys(key).access_token)
    assert (await client.get(f"/api/v1/secrets/{created['id']}", headers=bearer(token))).json()[
        "views_left"
    ] == 1


async def test_e2e_create_checks_the_envelope(client: httpx.AsyncClient) -> None:
    sealed = seal(Payload(b"x"), bytes(32), passphrase="pw", iterations=600_000)
    weak = {**sealed.envelope.to_json(), "iter": 1000}
    token = b64url_encode(sealed.keys.access_token)
    proof = b64url_encode(sealed.keys.passphrase_proof or b"")

    cases = {
        "weak-kdf": {"envelope": weak, "access_token": token, "passphrase_proof": proof},
        "no-proof": {"envelope": sealed.envelope.to_json(), "access_token": token},
        "no-token": {"envelope": sealed.envelope.to_json(), "passphrase_proof": proof},
        "passphrase-with-envelope": {
            "envelope": sealed.envelope.to_json(),
            "access_token": token,
            "passphrase_proof": proof,
            "passphrase": "pw",
        },
        "both-modes": {"secret": "x", "envelope": sealed.envelope.to_json(), "access_token": token},
    }
    for name, body in cases.items():
        response = await client.post("/api/v1/secrets", json=body)
        assert response.status_code == 422, name
        assert response.json()["error"]["code"] in {"invalid_field", "invalid_envelope"}, name


# -- receipt and burn ---------------------------------------------------------------------


async def test_receipt_lists_events_and_counts(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    created = await create(client, max_views=2, passphrase="pw")
    clock.advance(10)
    await reveal(client, created, passphrase="bad")
    await reveal(client, created, passphrase="pw")

    response = await client.get(
        f"/api/v1/secrets/{created['id']}/receipt", headers=bearer(manage_token(created))
    )

    assert response.status_code == 200
    receipt = response.json()
    assert receipt["state"] == "active"
    assert (receipt["views_used"], receipt["views_left"], receipt["max_views"]) == (1, 1, 2)
    assert [e["type"] for e in receipt["events"]] == ["created", "wrong_passphrase", "viewed"]
    assert {e["ip"] for e in receipt["events"]} == {"203.0.113.7"}
    assert {e["user_agent"] for e in receipt["events"]} == {"test-agent/1.0"}
    assert "s3cret" not in response.text
    assert response.headers["cache-control"] == "no-store"


async def test_receipt_survives_the_secret(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    created = await create(client, ttl=60)
    clock.advance(61)
    url = f"/api/v1/secrets/{created['id']}/receipt"

    expired = (await client.get(url, headers=bearer(manage_token(created)))).json()
    clock.advance(30 * 86400)
    forgotten = await client.get(url, headers=bearer(manage_token(created)))

    assert expired["state"] == "expired"
    assert expired["ended_at"] == created["expires_at"]
    assert expired["views_left"] == 0
    assert [e["type"] for e in expired["events"]] == ["created", "expired"]
    assert forgotten.status_code == 404


async def test_receipt_with_wrong_token_is_404(client: httpx.AsyncClient) -> None:
    created = await create(client)

    for headers in [{}, bearer("F" * 43), bearer(link_key(created))]:
        response = await client.get(f"/api/v1/secrets/{created['id']}/receipt", headers=headers)
        assert (response.status_code, response.json()) == (404, GONE)


async def test_delete_burns_and_is_recorded(client: httpx.AsyncClient) -> None:
    created = await create(client, max_views=5)
    headers = bearer(manage_token(created))

    response = await client.delete(f"/api/v1/secrets/{created['id']}", headers=headers)
    again = await client.delete(f"/api/v1/secrets/{created['id']}", headers=headers)

    assert (response.status_code, response.content) == (204, b"")
    assert again.status_code == 204
    assert (await reveal(client, created)).status_code == 404
    receipt = (await client.get(f"/api/v1/secrets/{created['id']}/receipt", headers=headers)).json()
    assert receipt["state"] == "burned"
    assert [e["type"] for e in receipt["events"]] == ["created", "burned"]


async def test_delete_needs_the_manage_token(client: httpx.AsyncClient) -> None:
    """Knowing the id, or even the link, cannot burn a secret."""
    created = await create(client)

    for headers in [{}, bearer("G" * 43), bearer(link_key(created))]:
        response = await client.delete(f"/api/v1/secrets/{created['id']}", headers=headers)
        assert (response.status_code, response.json()) == (404, GONE)

    assert (await reveal(client, created)).status_code == 200


async def test_reveal_of_an_e2e_file_answers_the_file(client: httpx.AsyncClient) -> None:
    created, key = await e2e_create(client)

    response = await client.post(
        f"/api/v1/secrets/{created['id']}/reveal", json={"key": b64url_encode(key)}
    )

    assert response.status_code == 200
    assert response.json() == {
        "secret": None,
        "file": {"name": "k.bin", "mime": None, "content_base64": "AGJpbmFyef8="},
        "views_left": 0,
    }


async def test_e2e_envelope_fields_must_be_exact(client: httpx.AsyncClient) -> None:
    sealed = seal(Payload(b"x"), bytes(32))
    envelope = {**sealed.envelope.to_json(), "iter": None, "salt": None}

    response = await client.post(
        "/api/v1/secrets",
        json={"envelope": envelope, "access_token": b64url_encode(sealed.keys.access_token)},
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_envelope"


async def test_curl_reveal_refuses_a_kdf_costlier_than_the_servers(
    client: httpx.AsyncClient,
) -> None:
    """Server-side PBKDF2 is capped, so uploaded envelopes cannot make the server burn CPU."""
    key = bytes(32)
    sealed = seal(Payload(b"x"), key, passphrase="pw", iterations=5_000_000)
    created = await client.post(
        "/api/v1/secrets",
        json={
            "envelope": sealed.envelope.to_json(),
            "access_token": b64url_encode(sealed.keys.access_token),
            "passphrase_proof": b64url_encode(sealed.keys.passphrase_proof or b""),
        },
    )

    response = await client.post(
        f"/api/v1/secrets/{created.json()['id']}/reveal",
        json={"key": b64url_encode(key), "passphrase": "pw"},
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "passphrase"
    token = b64url_encode(sealed.keys.access_token)
    info = await client.get(f"/api/v1/secrets/{created.json()['id']}", headers=bearer(token))
    assert info.json()["views_left"] == 1


async def test_curl_reveal_of_non_utf8_text_answers_it_as_a_file(
    client: httpx.AsyncClient,
) -> None:
    key = bytes(32)
    sealed = seal(Payload(b"\xff\xfe not utf-8"), key)
    created = await client.post(
        "/api/v1/secrets",
        json={
            "envelope": sealed.envelope.to_json(),
            "access_token": b64url_encode(sealed.keys.access_token),
        },
    )

    response = await client.post(
        f"/api/v1/secrets/{created.json()['id']}/reveal", json={"key": b64url_encode(key)}
    )

    assert response.status_code == 200
    assert response.json()["secret"] is None
    assert response.json()["file"]["content_base64"] == "//4gbm90IHV0Zi04"


async def test_policy_answers_the_servers_limits(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/policy")

    assert response.json() == {
        "min_ttl": 60,
        "max_ttl": 2592000,
        "default_ttl": 86400,
        "max_views": 100,
        "max_bytes": 64 * 1024,
        "passphrase_attempts": 5,
        "pbkdf2_iterations": 600000,
        "require_passphrase": False,
        "allowed_countries": [],
        "recipient_verification": False,
        "notifications": False,
        "recipients": False,
        "teams": [],
        "may_create": True,
        "refusal": None,
        "recipients_required": False,
        "recipients_inside": False,
        "recipients_require_mfa": False,
        "organisation_domains": [],
        "team_countries": None,
        "imposed_by": {},
    }
