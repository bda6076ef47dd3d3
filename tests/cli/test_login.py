"""``burnlink login`` against a real burnlink server and the real OpenID provider: the device
flow approved in a browser (httpx, as alice), denied, refused for a missing second factor,
expired, timed out; the token kept in ``credentials.json`` (mode 0600) and used by
``whoami``, ``share`` and ``logout --revoke``; the pasted-token fallback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from burnlink.cli.output import ExitCode
from burnlink.identity.tokens import new_api_token, parse_token
from tests.cli.harness import Cli, argv, running_server, server_settings
from tests.oidc_provider import OidcProvider, require_node

WAIT = 60.0


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    require_node()
    with OidcProvider(["http://127.0.0.1:1/auth/callback"]) as running:
        yield running


@pytest.fixture(scope="module")
def short_provider() -> Iterator[OidcProvider]:
    """A provider whose device codes expire after 2 seconds."""
    require_node()
    with OidcProvider(["http://127.0.0.1:1/auth/callback"], device_code_ttl=2) as running:
        yield running


def credentials(home: Path) -> Path:
    """Where the CLI keeps its tokens, with ``XDG_CONFIG_HOME=home``."""
    return home / "burnlink" / "credentials.json"


def sign_in_server(provider: OidcProvider, **overrides: object) -> Iterator[str]:
    settings = server_settings(
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
        oidc_scopes="openid email profile groups",
        **overrides,
    )
    with running_server(settings) as url:
        yield url


@pytest.fixture(scope="module")
def server(provider: OidcProvider) -> Iterator[str]:
    yield from sign_in_server(provider)


def start_login(server: str, home: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "BURNLINK_SERVER": server,
        "XDG_CONFIG_HOME": str(home),
        "BURNLINK_TOKEN": "",
    }
    return subprocess.Popen(  # noqa: S603 - fixed argv
        argv("login", *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def user_code(process: subprocess.Popen[str]) -> tuple[str, list[str]]:
    """The code the CLI tells the user to enter, and the lines it printed up to there."""
    assert process.stderr is not None
    lines = []
    while line := process.stderr.readline():
        lines.append(line)
        if "enter the code" in line:
            return line.rsplit(" ", 1)[1].strip(), lines
    raise AssertionError("".join(lines))


def login_as(
    provider: OidcProvider, server: str, home: Path, user: str, *args: str, allow: bool = True
) -> tuple[int, str]:
    with start_login(server, home, *args) as process:
        try:
            code, lines = user_code(process)
            with httpx.Client() as browser:
                provider.approve_device(browser, code, user, allow=allow)
            process.wait(timeout=WAIT)
            assert process.stderr is not None
            rest = process.stderr.read()  # the same buffered reader: nothing read ahead is lost
        finally:
            if process.poll() is None:
                process.kill()
    return process.returncode, "".join(lines) + rest


def test_login_completes_the_device_flow(
    provider: OidcProvider, server: str, tmp_path: Path
) -> None:
    status, stderr = login_as(provider, server, tmp_path, "alice")

    assert status == ExitCode.OK, stderr
    assert f"open {provider.issuer}/device" in stderr
    assert "user_code=" in stderr  # the complete address too
    path = credentials(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    kept = json.loads(path.read_text())
    assert list(kept) == [server]
    token = kept[server]
    assert parse_token(token) is not None
    assert token not in stderr  # never printed

    # The kept token is the one the other commands use: whoami, share (as its owner), logout.
    cli = Cli(server)
    env: dict[str, str | None] = {"XDG_CONFIG_HOME": str(tmp_path), "BURNLINK_TOKEN": None}
    whoami = cli("whoami", "--json", env=env)
    assert whoami.exit_code == ExitCode.OK, whoami.stderr
    assert json.loads(whoami.stdout)["email"] == "alice@example.com"
    assert json.loads(whoami.stdout)["via"] == "token"
    shared = cli("share", "--label", "from the device login", input=b"s3cret", env=env)
    assert shared.exit_code == ExitCode.OK, shared.stderr
    secret_id = shared.stdout.split("/s/", 1)[1].split("#", 1)[0]
    mine = httpx.get(
        f"{server}/api/v1/me/secrets", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert [(s["id"], s["label"]) for s in mine["secrets"]] == [
        (secret_id, "from the device login")
    ]
    logout = cli("logout", "--revoke", env=env)
    assert logout.exit_code == ExitCode.OK, logout.stderr
    assert json.loads(path.read_text()) == {}
    assert cli("whoami", "--token", token, env=env).exit_code == ExitCode.SIGN_IN


def test_login_denied_at_the_provider(provider: OidcProvider, server: str, tmp_path: Path) -> None:
    status, stderr = login_as(provider, server, tmp_path, "bob", allow=False)

    assert status == ExitCode.LOGIN_DENIED, stderr
    assert "denied" in stderr
    assert not credentials(tmp_path).exists()


def test_login_without_second_factor_is_refused(provider: OidcProvider, tmp_path: Path) -> None:
    for mfa_server in sign_in_server(provider, oidc_require_mfa=True):
        status, stderr = login_as(provider, mfa_server, tmp_path, "bob")

        assert status == ExitCode.LOGIN_DENIED, stderr
        assert "second factor" in stderr
        assert not credentials(tmp_path).exists()


def test_login_with_an_expired_code(short_provider: OidcProvider, tmp_path: Path) -> None:
    for short_server in sign_in_server(short_provider):
        process = start_login(short_server, tmp_path)
        _, stderr = process.communicate(timeout=WAIT)

        assert process.returncode == ExitCode.LOGIN_EXPIRED, stderr
        assert "expired" in stderr


def test_login_slows_down_when_the_provider_asks(tmp_path: Path) -> None:
    """RFC 8628 §3.5: on ``slow_down`` (the provider's, through the server) the CLI adds 5
    seconds to its interval. The provider names a 1-second interval but wants 3 seconds
    between polls; the sign-in is approved only once it has said ``slow_down``, so a CLI that
    kept polling every second would never get past it."""
    require_node()
    slow = OidcProvider(["http://127.0.0.1:1/auth/callback"], device_interval=1, device_min_poll=3)
    with slow:
        for slow_server in sign_in_server(slow):
            with start_login(slow_server, tmp_path) as process:
                try:
                    code, _ = user_code(process)
                    deadline = time.monotonic() + WAIT
                    while not any(slowed for _, slowed in slow.device_polls()):
                        assert process.poll() is None, process.communicate()
                        assert time.monotonic() < deadline, slow.log_tail()
                        time.sleep(0.05)
                    with httpx.Client() as browser:
                        slow.approve_device(browser, code, "alice")
                    _, stderr = process.communicate(timeout=WAIT)
                finally:
                    if process.poll() is None:
                        process.kill()

            assert process.returncode == ExitCode.OK, stderr
            polls = slow.device_polls()
            slowed = next(i for i, (_, answer) in enumerate(polls) if answer)
            (gap, answer), *after = polls[slowed + 1 :]
            assert not answer  # the next poll waited long enough, and got the token
            assert gap is not None
            assert gap >= 1 + 5 - 0.5  # the interval plus RFC 8628's 5 seconds
            assert after == []
            assert parse_token(json.loads(credentials(tmp_path).read_text())[slow_server])


def test_login_times_out(server: str, tmp_path: Path) -> None:
    process = start_login(server, tmp_path, "--timeout", "1")
    _, stderr = process.communicate(timeout=WAIT)

    assert process.returncode == ExitCode.LOGIN_EXPIRED, stderr
    assert "not approved in time" in stderr


def test_login_asks_for_a_token_when_the_server_has_no_device_sign_in(tmp_path: Path) -> None:
    token = new_api_token()
    with running_server(server_settings()) as plain:
        result = Cli(plain)(
            "login",
            input=token.encode() + b"\n",
            env={"XDG_CONFIG_HOME": str(tmp_path), "BURNLINK_TOKEN": None},
        )

    # It falls back to the pasted token, which is checked with the server before it is kept:
    # this one has no sign-in at all (the fallback that succeeds is in test_signin.py).
    assert "paste an API token" in result.stderr
    assert result.exit_code == ExitCode.INVALID_INPUT, result.stderr
    assert "has no sign-in" in result.stderr
    assert not credentials(tmp_path).exists()


def test_login_paste_refuses_a_mistyped_token(server: str, tmp_path: Path) -> None:
    token = new_api_token()
    typo = token[:-1] + ("A" if token[-1] != "A" else "B")

    result = Cli(server)(
        "login",
        "--paste",
        input=typo.encode() + b"\n",
        env={"XDG_CONFIG_HOME": str(tmp_path), "BURNLINK_TOKEN": None},
    )

    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "typo" in result.stderr
    assert not credentials(tmp_path).exists()
