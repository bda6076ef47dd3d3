"""How ``ApiClient`` maps the server's answers, and failures to get one, onto burnlink errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from burnlink.cli.client import USER_AGENT, ApiClient, ServerUnavailable, Viewer
from burnlink.envelope import MAX_ITERATIONS
from burnlink.errors import (
    AccessDenied,
    BurnlinkError,
    InvalidInput,
    PassphraseRequired,
    PayloadTooLarge,
    SecretUnavailable,
    StorageUnavailable,
    WrongPassphrase,
)
from burnlink.ids import b64url_encode

BASE = "https://x.example/burn"
SECRET_ID = "Qm9vb3Jvb3Jvb3Jvb3Jvbw"
TOKEN = bytes(range(32))
SALT = b64url_encode(bytes(16))

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> ApiClient:
    return ApiClient(BASE, transport=httpx.MockTransport(handler))


def _answer(status: int, body: Any = None, *, text: str | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    return handler


def _error(status: int, code: str, message: str = "m", **extra: object) -> Handler:
    return _answer(status, {"error": {"code": code, "message": message, **extra}})


def _info(**passphrase: object) -> dict[str, object]:
    return {"views_left": 1, "attempts_left": 5, "passphrase": passphrase or None}


def test_client_sends_bearer_token_and_user_agent_under_the_base_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_info())

    with _client(handler) as api:
        info = api.info(SECRET_ID, TOKEN)

    assert info.passphrase is None
    assert str(seen[0].url) == f"{BASE}/api/v1/secrets/{SECRET_ID}"
    assert seen[0].headers["authorization"] == f"Bearer {b64url_encode(TOKEN)}"
    assert seen[0].headers["user-agent"] == USER_AGENT


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        pytest.param(_error(404, "not_found"), SecretUnavailable, id="404"),
        pytest.param(
            _error(403, "passphrase_required", attempts_left=5), PassphraseRequired, id="required"
        ),
        pytest.param(_error(403, "wrong_passphrase", attempts_left=2), WrongPassphrase, id="wrong"),
        pytest.param(_error(403, "access_denied", attempts_left=0), AccessDenied, id="denied"),
        pytest.param(_error(503, "store_unavailable"), StorageUnavailable, id="store"),
        pytest.param(_error(500, "internal_error"), ServerUnavailable, id="500"),
        pytest.param(_answer(502, text="<html>bad gateway</html>"), ServerUnavailable, id="502"),
        pytest.param(_answer(404, text="<html>nginx</html>"), ServerUnavailable, id="not-burnlink"),
        pytest.param(_answer(200, text="hello"), ServerUnavailable, id="200-not-json"),
        pytest.param(_answer(200, [1, 2]), ServerUnavailable, id="200-not-object"),
        pytest.param(_answer(200, {"views_left": "1"}), ServerUnavailable, id="200-wrong-type"),
        pytest.param(_answer(301, text=""), ServerUnavailable, id="redirect"),
    ],
)
def test_client_maps_answers_onto_errors(handler: Handler, expected: type[BurnlinkError]) -> None:
    with _client(handler) as api, pytest.raises(BurnlinkError) as caught:
        api.info(SECRET_ID, TOKEN)

    assert type(caught.value) is expected


def test_client_keeps_attempts_left() -> None:
    handler = _error(403, "wrong_passphrase", attempts_left=2)

    with _client(handler) as api, pytest.raises(WrongPassphrase) as caught:
        api.consume(SECRET_ID, TOKEN, TOKEN)

    assert caught.value.attempts_left == 2


def test_client_keeps_the_servers_validation_message() -> None:
    handler = _error(422, "invalid_field", "ttl: must be from 60 to 100 seconds", field="ttl")

    with _client(handler) as api, pytest.raises(InvalidInput) as caught:
        api.receipt(SECRET_ID, TOKEN)

    assert (caught.value.field, caught.value.reason) == ("ttl", "must be from 60 to 100 seconds")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            {"limit": 1024, "field": "envelope.ct"},
            "secret: larger than the limit of 1024 bytes",
            id="api",
        ),
        pytest.param(
            {"limit": 4096}, "request: larger than the limit of 4096 bytes", id="body-guard"
        ),
    ],
)
def test_client_maps_413_to_payload_too_large(extra: dict[str, object], message: str) -> None:
    handler = _answer(413, {"error": {"code": "payload_too_large", "message": "m", **extra}})

    with _client(handler) as api, pytest.raises(PayloadTooLarge) as caught:
        api.receipt(SECRET_ID, TOKEN)

    assert str(caught.value) == message


def _receipt_answer(*events: object) -> dict[str, object]:
    return {
        "id": SECRET_ID,
        "state": "active",
        "created_at": "2030-01-01T00:00:00.000Z",
        "expires_at": "2030-01-02T00:00:00.000Z",
        "ended_at": None,
        "max_views": 2,
        "views_used": 1,
        "views_left": 1,
        "events": list(events),
    }


def test_client_reads_the_viewer_of_receipt_events() -> None:
    """``viewer`` is an object or null; an older server sends none."""
    at = "2030-01-01T00:00:00.000Z"
    line = {"at": at, "type": "viewed", "ip": "203.0.113.7", "user_agent": None}
    answer = _receipt_answer(
        {**line, "viewer": {"email": "alice@example.com", "mfa": True}},
        {**line, "viewer": {"email": None, "mfa": False}},
        {**line, "viewer": None},
        line,
    )
    with _client(_answer(200, answer)) as api:
        receipt = api.receipt(SECRET_ID, TOKEN)

    assert [e.viewer for e in receipt.events] == [
        Viewer(email="alice@example.com", mfa=True),
        Viewer(email=None, mfa=False),
        None,
        None,
    ]


@pytest.mark.parametrize(
    "viewer", ["alice@example.com", {"email": "a@example.com"}, {"email": 1, "mfa": True}]
)
def test_client_refuses_a_malformed_viewer(viewer: object) -> None:
    line = {"at": "t", "type": "viewed", "ip": None, "user_agent": None, "viewer": viewer}
    with _client(_answer(200, _receipt_answer(line))) as api, pytest.raises(ServerUnavailable):
        api.receipt(SECRET_ID, TOKEN)


def test_client_refuses_too_many_iterations() -> None:
    handler = _answer(200, _info(kdf="pbkdf2-sha256", iterations=MAX_ITERATIONS + 1, salt=SALT))

    with _client(handler) as api, pytest.raises(ServerUnavailable, match="refusing"):
        api.info(SECRET_ID, TOKEN)


def test_client_reads_passphrase_parameters() -> None:
    handler = _answer(200, _info(kdf="pbkdf2-sha256", iterations=600_000, salt=SALT))

    with _client(handler) as api:
        info = api.info(SECRET_ID, TOKEN)

    assert info.passphrase is not None
    assert (info.passphrase.iterations, info.passphrase.salt) == (600_000, bytes(16))


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        pytest.param(httpx.ReadTimeout("slow"), "did not answer within", id="timeout"),
        pytest.param(httpx.ConnectError("refused"), "cannot reach the server", id="connect"),
    ],
)
def test_client_maps_transport_failures_to_server_unavailable(
    failure: httpx.HTTPError, message: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with _client(handler) as api, pytest.raises(ServerUnavailable, match=message):
        api.burn(SECRET_ID, TOKEN)


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param({"max_bytes": 1024, "pbkdf2_iterations": 1000}, id="iterations-below-v1"),
        pytest.param({"max_bytes": 1024, "pbkdf2_iterations": MAX_ITERATIONS + 1}, id="above"),
        pytest.param({"max_bytes": 0, "pbkdf2_iterations": 600_000}, id="no-size"),
        pytest.param({"pbkdf2_iterations": 600_000}, id="missing-size"),
    ],
)
def test_client_refuses_a_policy_outside_envelope_v1(policy: dict[str, object]) -> None:
    with _client(_answer(200, policy)) as api, pytest.raises(ServerUnavailable):
        api.policy()


def test_client_reads_the_policy() -> None:
    answer = {"max_bytes": 2048, "pbkdf2_iterations": 700_000, "max_views": 3}

    with _client(_answer(200, answer)) as api:
        policy = api.policy()

    assert (policy.max_bytes, policy.pbkdf2_iterations) == (2048, 700_000)
