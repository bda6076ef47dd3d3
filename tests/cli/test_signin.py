"""``burnlink login``, ``whoami``, ``logout`` and ``share --token`` against a real server with
sign-in on: the token is checked, kept per server with mode 0600, sent as the bearer, and
refused once revoked."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from burnlink.cli.output import ExitCode
from burnlink.cli.signin import credentials_path
from burnlink.identity.tokens import new_api_token, new_token_id
from burnlink.ids import token_digest
from burnlink.store.identity import TokenRecord
from burnlink.store.memory import MemoryStore
from tests.cli.harness import Cli, running_server, server_settings
from tests.web.signed_in import SIGN_IN


@dataclass(frozen=True)
class SignedInServer:
    cli: Cli
    store: MemoryStore
    token: str


def put_token(
    store: MemoryStore,
    scopes: tuple[str, ...],
    *,
    subject: str = "alice-sub",
    email: str = "alice@example.com",
    groups: tuple[str, ...] = ("engineering",),
) -> str:
    """A live API token of a day for this user, put straight into the server's store."""
    token = new_api_token()
    now = datetime.now(UTC)
    record = TokenRecord(
        token_id=new_token_id(),
        digest=token_digest(token.encode()),
        subject=subject,
        email=email,
        groups=groups,
        name="cli",
        scopes=scopes,
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    asyncio.run(store.put_token(record))
    return token


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SignedInServer]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("BURNLINK_TOKEN", raising=False)
    store = MemoryStore(retention=timedelta(days=30))
    token = put_token(store, ("secrets:create", "secrets:read-receipts", "secrets:burn"))
    sign_in = {k: v for k, v in SIGN_IN.items() if k != "base_url"}
    with running_server(server_settings(**sign_in), store=store) as url:
        yield SignedInServer(Cli(url), store, token)


def test_login_keeps_the_token_privately_and_whoami_uses_it(server: SignedInServer) -> None:
    login = server.cli("login", "--token", server.token)
    whoami = server.cli("whoami", "--json")

    assert login.exit_code == 0, login.stderr
    assert "alice@example.com" in login.stderr
    assert server.token not in login.stdout + login.stderr
    path = credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {server.cli.server: server.token}
    assert whoami.exit_code == 0, whoami.stderr
    assert json.loads(whoami.stdout) == {
        "subject": "alice-sub",
        "email": "alice@example.com",
        "groups": ["engineering"],
        "via": "token",
    }


def test_login_reads_a_pasted_token(server: SignedInServer) -> None:
    result = server.cli("login", "--paste", input=(server.token + "\n").encode())

    assert result.exit_code == 0, result.stderr
    assert server.cli("whoami").stdout.splitlines()[0] == "alice@example.com"


def test_login_takes_a_pasted_token_when_the_device_sign_in_cannot_start(
    server: SignedInServer,
) -> None:
    # This server's provider is never reachable: the device sign-in cannot start.
    result = server.cli("login", input=(server.token + "\n").encode())

    assert result.exit_code == 0, result.stderr
    assert "device sign-in is not available now" in result.stderr
    assert json.loads(credentials_path().read_text()) == {server.cli.server: server.token}


@pytest.mark.parametrize(
    ("token", "code"),
    [
        pytest.param("not-a-token", ExitCode.INVALID_INPUT, id="malformed"),
        pytest.param("blk_" + "A" * 43 + "AAAAAA", ExitCode.INVALID_INPUT, id="bad-checksum"),
        pytest.param("unknown", ExitCode.SIGN_IN, id="unknown"),
    ],
)
def test_login_refuses_a_bad_token_and_keeps_nothing(
    server: SignedInServer, token: str, code: ExitCode
) -> None:
    result = server.cli("login", "--token", new_api_token() if token == "unknown" else token)

    assert result.exit_code == code, result.stderr
    assert not credentials_path().exists()


def test_share_with_the_token_creates_as_its_user(server: SignedInServer) -> None:
    link = server.cli.share(b"s3cret", "--label", "for Bob", env={"BURNLINK_TOKEN": server.token})
    secret_id = link.split("/s/", 1)[1].split("#", 1)[0]

    owned = asyncio.run(server.store.owned_secrets("alice-sub", now=datetime.now(UTC), limit=10))

    assert [(r.secret_id, r.label) for r in owned] == [(secret_id, "for Bob")]


def test_logout_forgets_and_revokes(server: SignedInServer) -> None:
    assert server.cli("login", "--token", server.token).exit_code == 0

    result = server.cli("logout", "--revoke")
    after = server.cli("whoami")
    direct = server.cli("whoami", "--token", server.token)

    assert result.exit_code == 0, result.stderr
    assert json.loads(credentials_path().read_text()) == {}
    assert after.exit_code == ExitCode.SIGN_IN
    assert direct.exit_code == ExitCode.SIGN_IN
    assert "invalid, expired or revoked" in direct.stderr


def test_whoami_without_a_token_says_how_to_sign_in(server: SignedInServer) -> None:
    result = server.cli("whoami", "--json")

    assert result.exit_code == ExitCode.SIGN_IN
    assert json.loads(result.stderr)["error"]["code"] == "invalid_token"
