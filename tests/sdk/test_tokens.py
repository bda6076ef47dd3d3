"""The SDK with API tokens (``blk_…``) against a real server that lets only signed-in users
create: the token makes shares its user's, goes to its own server only, and serves as the
recipient's sign-in for a secret bound to recipients."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from burnlink import Client
from burnlink.identity.tokens import new_api_token
from burnlink.sdk import InvalidApiToken, LoginRequired, RecipientMismatch
from burnlink.store.memory import MemoryStore
from tests.cli.harness import running_server, server_settings
from tests.cli.test_signin import put_token
from tests.web.signed_in import SIGN_IN

ALL = ("secrets:create", "secrets:read-receipts", "secrets:burn")


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    return MemoryStore(retention=timedelta(days=30))


@pytest.fixture(scope="module")
def server(store: MemoryStore) -> Iterator[str]:
    sign_in = {k: v for k, v in SIGN_IN.items() if k != "base_url"}
    settings = server_settings(**sign_in, create_requires="login")
    with running_server(settings, store=store) as base:
        yield base


def test_a_token_makes_the_share_its_users_and_anonymous_shares_are_refused(
    server: str, store: MemoryStore
) -> None:
    token = put_token(store, ALL)

    with Client(server, token=token) as alice:
        shared = alice.share("from alice")
    with Client(server) as anonymous, pytest.raises(LoginRequired) as refused:
        anonymous.share("from nobody")

    assert refused.value.code == "login_required"
    with Client() as reader:
        assert reader.get(shared.url) == b"from alice"


def test_an_unknown_token_is_refused_and_never_silently_anonymous(server: str) -> None:
    with Client(server, token=new_api_token()) as client, pytest.raises(InvalidApiToken) as bad:
        client.share("x")

    assert bad.value.code == "invalid_token"


def test_a_recipient_reads_with_their_token_and_nobody_else_does(
    server: str, store: MemoryStore
) -> None:
    sender = put_token(store, ALL)
    bob = put_token(store, ALL, subject="bob-sub", email="bob@example.com", groups=())
    carol = put_token(store, ALL, subject="carol-sub", email="carol@example.com", groups=())
    with Client(server, token=sender) as client:
        shared = client.share("for bob", recipients=["bob@example.com"])

    with Client() as anonymous, pytest.raises(LoginRequired):
        anonymous.get(shared.url)
    # A token for another server is never sent to this one.
    with Client("https://elsewhere.example", token=bob) as other, pytest.raises(LoginRequired):
        other.get(shared.url)
    with Client(server, token=carol) as wrong, pytest.raises(RecipientMismatch) as mismatch:
        wrong.get(shared.url)
    with Client(server, token=bob) as right:
        content = right.get(shared.url)

    assert mismatch.value.code == "recipient_mismatch"
    assert content == b"for bob"
