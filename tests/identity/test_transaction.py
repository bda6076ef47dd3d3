"""The login transaction cookie: sealed, single purpose, expiring; ``next`` kept on this site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from burnlink.identity.transaction import LOGIN_SECONDS, LoginTransaction, SignInKeys, safe_next

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
KEYS = SignInKeys.derive("client-secret")


def transaction(**changes: object) -> LoginTransaction:
    values: dict[str, object] = {
        "state": "state-value",
        "nonce": "nonce-value",
        "verifier": "v" * 64,
        "next": "/me",
        "max_age": None,
        "expires": int(NOW.timestamp()) + LOGIN_SECONDS,
    }
    values.update(changes)
    return LoginTransaction(**values)  # type: ignore[arg-type]


def test_transaction_round_trips() -> None:
    txn = transaction(max_age=300)

    assert LoginTransaction.open(txn.seal(KEYS.login), KEYS.login, now=NOW) == txn


def test_transaction_is_encrypted() -> None:
    sealed = transaction().seal(KEYS.login)

    for value in ("state-value", "nonce-value", "/me"):
        assert value not in sealed


def test_sealing_twice_gives_different_cookies() -> None:
    txn = transaction()

    assert txn.seal(KEYS.login) != txn.seal(KEYS.login)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("not base64!", id="garbage"),
        pytest.param("A" * 5000, id="too-long"),
    ],
)
def test_malformed_transactions_are_refused(value: str | None) -> None:
    assert LoginTransaction.open(value, KEYS.login, now=NOW) is None


def test_tampered_transaction_is_refused() -> None:
    sealed = transaction().seal(KEYS.login)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]

    assert LoginTransaction.open(flipped, KEYS.login, now=NOW) is None


def test_transaction_under_another_key_is_refused() -> None:
    sealed = transaction().seal(SignInKeys.derive("another-secret").login)

    assert LoginTransaction.open(sealed, KEYS.login, now=NOW) is None


def test_transaction_expires() -> None:
    sealed = transaction().seal(KEYS.login)
    later = NOW + timedelta(seconds=LOGIN_SECONDS)

    assert LoginTransaction.open(sealed, KEYS.login, now=later - timedelta(seconds=1))
    assert LoginTransaction.open(sealed, KEYS.login, now=later) is None


def test_keys_differ_by_purpose() -> None:
    assert KEYS.login != KEYS.csrf
    assert len(KEYS.login) == len(KEYS.csrf) == 32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "/", id="none"),
        pytest.param("", "/", id="empty"),
        pytest.param("/", "/", id="root"),
        pytest.param("/me", "/me", id="path"),
        pytest.param("/me?tab=tokens&x=1", "/me?tab=tokens&x=1", id="query"),
        pytest.param("https://evil.example/", "/", id="absolute"),
        pytest.param("//evil.example/", "/", id="scheme-relative"),
        pytest.param("/\\evil.example/", "/", id="backslash-host"),
        pytest.param("/a\\b", "/", id="backslash"),
        pytest.param("javascript:alert(1)", "/", id="javascript"),
        pytest.param("me", "/", id="relative"),
        pytest.param("/ evil", "/", id="space"),
        pytest.param("/\tevil", "/", id="tab"),
        pytest.param("/\r\nSet-Cookie: x=1", "/", id="header-split"),
        pytest.param("/" + "a" * 600, "/", id="too-long"),
    ],
)
def test_safe_next_keeps_paths_on_this_site(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected
