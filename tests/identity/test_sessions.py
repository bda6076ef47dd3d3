"""Session ids, cookie names and CSRF tokens."""

from __future__ import annotations

import pytest

from burnlink.identity.sessions import (
    cookie_names,
    csrf_matches,
    csrf_token,
    new_session_id,
    parse_session_id,
    session_digest,
)
from burnlink.identity.transaction import SignInKeys
from burnlink.ids import token_digest

KEY = SignInKeys.derive("client-secret").csrf


def test_session_ids_are_random_and_well_formed() -> None:
    ids = {new_session_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(parse_session_id(i) == i for i in ids)


def test_store_key_is_the_token_digest() -> None:
    session_id = new_session_id()

    assert session_digest(session_id) == token_digest(session_id.encode())


@pytest.mark.parametrize("value", [None, "", "short", "A" * 44, "A" * 42 + "!"])
def test_malformed_session_ids_are_not_looked_up(value: str | None) -> None:
    assert parse_session_id(value) is None


def test_cookie_names_follow_the_origin() -> None:
    secure, plain = cookie_names(secure=True), cookie_names(secure=False)

    assert (secure.session, secure.login, secure.secure) == (
        "__Host-burnlink_session",
        "__Host-burnlink_login",
        True,
    )
    assert (plain.session, plain.login, plain.secure) == (
        "burnlink_session",
        "burnlink_login",
        False,
    )


def test_csrf_token_is_tied_to_the_session_and_the_key() -> None:
    first, second = new_session_id(), new_session_id()
    token = csrf_token(KEY, first)

    assert csrf_matches(KEY, first, token)
    assert not csrf_matches(KEY, second, token)
    assert not csrf_matches(SignInKeys.derive("other").csrf, first, token)
    assert csrf_token(KEY, first) == token


@pytest.mark.parametrize("given", [None, "", "x", "A" * 43, "A" * 200])
def test_wrong_csrf_tokens_do_not_match(given: str | None) -> None:
    assert not csrf_matches(KEY, new_session_id(), given)
