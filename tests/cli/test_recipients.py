"""``burnlink share --recipient/--require-mfa`` and ``burnlink get`` of a bound secret, against
a real server on a socket: ``get`` sends the user's API token (kept by ``login``, or
``--token``/``BURNLINK_TOKEN``) only once the server asks for a sign-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from burnlink.cli.output import ExitCode
from burnlink.identity.tokens import new_api_token
from burnlink.store.memory import MemoryStore
from tests.cli.harness import Cli, running_server, server_settings
from tests.cli.test_signin import put_token
from tests.web.signed_in import SIGN_IN


@dataclass(frozen=True)
class Server:
    cli: Cli
    store: MemoryStore
    alice: str
    mallory: str


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("BURNLINK_TOKEN", raising=False)
    store = MemoryStore(retention=timedelta(days=30))
    alice = put_token(store, ("secrets:create",))
    mallory = put_token(
        store,
        ("secrets:create",),
        subject="mallory-sub",
        email="mallory@other.test",
        groups=("sales",),
    )
    sign_in = {k: v for k, v in SIGN_IN.items() if k != "base_url"}
    with running_server(server_settings(**sign_in), store=store) as url:
        yield Server(Cli(url), store, alice, mallory)


def views_left(server: Server, link: str) -> int | None:
    secret_id = link.split("/s/", 1)[1].split("#", 1)[0]
    meta = asyncio.run(server.store.peek(secret_id, now=datetime.now(UTC)))
    return None if meta is None else meta.views_left


def test_share_binds_recipients_and_get_opens_with_the_login_token(server: Server) -> None:
    link = server.cli.share(
        b"s3cret", "--recipient", "Alice@Example.com", "--recipient", "group:ops"
    )
    anonymous = server.cli("get", link)
    left = views_left(server, link)
    login = server.cli("login", "--token", server.alice)

    opened = server.cli("get", link)

    assert anonymous.exit_code == ExitCode.SIGN_IN, anonymous.stderr
    assert "burnlink login" in anonymous.stderr
    assert left == 1
    assert login.exit_code == 0, login.stderr
    assert opened.exit_code == 0, opened.stderr
    assert opened.stdout == "s3cret"
    assert server.alice not in opened.stdout + opened.stderr


def test_get_as_another_user_is_refused_and_consumes_nothing(server: Server) -> None:
    link = server.cli.share(b"s3cret", "--recipient", "domain:example.com")

    refused = server.cli("get", link, "--json", env={"BURNLINK_TOKEN": server.mallory})

    assert refused.exit_code == ExitCode.ACCESS_DENIED, refused.stderr
    assert json.loads(refused.stderr)["error"]["code"] == "recipient_mismatch"
    assert views_left(server, link) == 1


def test_get_of_a_secret_that_requires_mfa_says_to_use_a_browser(server: Server) -> None:
    link = server.cli.share(b"s3cret", "--recipient", "alice@example.com", "--require-mfa")

    refused = server.cli("get", link, "--token", server.alice)

    assert refused.exit_code == ExitCode.ACCESS_DENIED, refused.stderr
    assert "browser" in refused.stderr
    assert views_left(server, link) == 1


def test_require_mfa_without_a_recipient_is_invalid_input(server: Server) -> None:
    result = server.cli("share", "--require-mfa", input=b"s3cret")

    assert result.exit_code == ExitCode.INVALID_INPUT, result.stderr
    assert "require_mfa" in result.stderr


def test_get_of_an_unbound_secret_never_sends_the_token(server: Server) -> None:
    link = server.cli.share(b"s3cret")

    # A token the server would refuse: it is never sent, so the reveal works.
    opened = server.cli("get", link, env={"BURNLINK_TOKEN": new_api_token()})

    assert opened.exit_code == 0, opened.stderr
    assert opened.stdout == "s3cret"


def test_the_environments_token_never_goes_to_a_server_it_is_not_for(server: Server) -> None:
    """A link can name any server: ``BURNLINK_TOKEN`` goes only to ``BURNLINK_SERVER``, so a
    link to another server asking for a sign-in does not get it."""
    link = server.cli.share(b"s3cret", "--recipient", "alice@example.com")
    elsewhere = {"BURNLINK_TOKEN": server.alice, "BURNLINK_SERVER": "https://burnlink.example.com"}

    refused = server.cli("get", link, env=elsewhere)
    typed = server.cli("get", link, "--token", server.alice, env=elsewhere)

    assert refused.exit_code == ExitCode.SIGN_IN, refused.stderr
    assert views_left(server, link) is None  # the typed token opened it
    assert typed.exit_code == 0, typed.stderr
    assert typed.stdout == "s3cret"
