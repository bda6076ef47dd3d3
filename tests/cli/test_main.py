"""The ``burnlink`` commands end to end, against a real server."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from burnlink.cli.links import parse_secret_link
from burnlink.crypto import access_token
from burnlink.ids import b64url_encode
from tests.cli.harness import MAX_BYTES, Cli, argv, fragment, one_line

LINK_RE = re.compile(r"http://127\.0\.0\.1:[0-9]+/s/[A-Za-z0-9_-]{22}#[A-Za-z0-9_-]{43}\n")
SOME_ID = "AAAAAAAAAAAAAAAAAAAAAA"
SOME_KEY = "B" * 42 + "A"
DEAD_SERVER = "http://127.0.0.1:1"
PASSPHRASE = "correct horse battery"
SUBPROCESS_TIMEOUT = 30


def test_share_prints_only_the_link_on_stdout(cli: Cli) -> None:
    result = cli("share", input=b"hunter2")

    assert result.exit_code == 0
    assert LINK_RE.fullmatch(result.stdout)
    assert "/m/" in result.stderr  # the manage link, for the sender to keep
    assert fragment(result.stdout.strip()) not in result.stderr


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("pässwörd ✓ 鍵\n".encode(), id="non-ascii-trailing-newline"),
        pytest.param(b"line one\r\nline two\n\n", id="crlf-and-blank-lines"),
        pytest.param(b"  spaced\t", id="surrounding-whitespace"),
    ],
)
def test_get_writes_the_exact_text_bytes(cli: Cli, secret: bytes) -> None:
    link = cli.share(secret)

    result = cli("get", link)

    assert result.exit_code == 0
    assert result.stdout_bytes == secret
    assert result.stderr == ""


def test_get_writes_the_exact_binary_bytes(cli: Cli) -> None:
    secret = bytes(range(256)) * 8

    result = cli("get", cli.share(secret))

    assert result.exit_code == 0
    assert result.stdout_bytes == secret


def test_share_file_round_trip_keeps_content_and_name(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "deploy key.json"
    path.write_bytes(b'{"private_key": "-----BEGIN"}\n\x00\xff')
    link = cli.share(b"", "--file", str(path))

    result = cli("get", "--json", link)

    assert result.exit_code == 0
    revealed = json.loads(result.stdout)
    assert revealed["secret"] is None
    assert revealed["views_left"] == 0
    assert revealed["file"]["name"] == "deploy key.json"
    assert revealed["file"]["mime"] == "application/json"
    assert base64.b64decode(revealed["file"]["content_base64"]) == path.read_bytes()


def test_get_output_writes_a_private_file(cli: Cli, tmp_path: Path) -> None:
    link = cli.share(b"s3cret\n")
    target = tmp_path / "key.txt"

    result = cli("get", "--output", str(target), link)

    assert result.exit_code == 0
    assert result.stdout == ""
    assert target.read_bytes() == b"s3cret\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_get_key_option_opens_a_link_sent_without_its_key(cli: Cli) -> None:
    url, _, key = cli.share(b"split").partition("#")

    result = cli("get", url, "--key", key)

    assert result.exit_code == 0
    assert result.stdout_bytes == b"split"


def test_get_second_time_exits_3_with_one_line(cli: Cli) -> None:
    link = cli.share(b"once only")
    assert cli("get", link).exit_code == 0

    result = cli("get", link)

    assert result.exit_code == 3
    assert result.stdout == ""
    assert one_line(result.stderr)
    assert result.stderr.startswith("burnlink: ")
    assert fragment(link) not in result.stderr


def test_share_views_two_allows_exactly_two_gets(cli: Cli) -> None:
    link = cli.share(b"twice", "--views", "2")

    results = [cli("get", link) for _ in range(3)]

    assert [r.exit_code for r in results] == [0, 0, 3]
    assert results[1].stdout_bytes == b"twice"


def test_passphrase_round_trip_is_enforced_by_the_server(
    cli: Cli, server: str, tmp_path: Path
) -> None:
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    link = cli.share(b"guarded", "--passphrase-file", str(passphrase_file))
    parsed = parse_secret_link(link)

    # Without the proof the server itself refuses the view (and does not count it).
    refused = httpx.post(
        f"{server}/api/v1/secrets/{parsed.secret_id}/consume",
        json={},
        headers={"Authorization": f"Bearer {b64url_encode(access_token(parsed.token))}"},
    )
    result = cli("get", link, env={"BURNLINK_PASSPHRASE": PASSPHRASE})

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "passphrase_required"
    assert result.exit_code == 0
    assert result.stdout_bytes == b"guarded"


def test_get_wrong_passphrase_exits_4_until_the_secret_burns(cli: Cli) -> None:
    link = cli.share(b"guarded", env={"BURNLINK_PASSPHRASE": PASSPHRASE})
    wrong = {"BURNLINK_PASSPHRASE": "not-it-42"}

    results = [cli("get", link, env=wrong) for _ in range(5)]
    after = cli("get", link, env={"BURNLINK_PASSPHRASE": PASSPHRASE})

    assert [r.exit_code for r in results] == [4] * 5
    assert "4 attempts left" in results[0].stderr
    assert "1 attempt left" in results[3].stderr
    assert "destroyed" in results[4].stderr
    assert all(one_line(r.stderr) and "not-it-42" not in r.stderr for r in results)
    assert after.exit_code == 3


def test_json_outputs_have_the_documented_keys(cli: Cli) -> None:
    created = cli.share_json(b"json please", "--ttl", "1h")

    got = cli("get", "--json", str(created["url"]))
    status = cli("status", "--json", str(created["manage_url"]))

    assert set(created) == {"url", "manage_url", "expires_at", "id", "max_views"}
    expires = datetime.fromisoformat(str(created["expires_at"]))
    assert 3590 < (expires - datetime.now(UTC)).total_seconds() <= 3600
    assert json.loads(got.stdout) == {"secret": "json please", "file": None, "views_left": 0}
    receipt = json.loads(status.stdout)
    assert set(receipt) == {
        "id",
        "state",
        "created_at",
        "expires_at",
        "ended_at",
        "max_views",
        "views_used",
        "views_left",
        "events",
        "statement",
    }
    assert [e["type"] for e in receipt["events"]] == ["created", "viewed"]


def test_json_errors_are_json_on_stderr(cli: Cli) -> None:
    link = cli.share(b"x")
    cli("get", link)

    result = cli("get", "--json", link)

    assert result.exit_code == 3
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "not_found"
    assert error["message"]


@pytest.mark.parametrize("ttl", ["5x", "0", "1.5h", "-1", "h", ""])
def test_share_bad_ttl_exits_6(cli: Cli, ttl: str) -> None:
    result = cli("share", "--ttl", ttl, input=b"x")

    assert result.exit_code == 6
    assert one_line(result.stderr)
    assert "--ttl" in result.stderr


def test_share_ttl_refused_by_the_server_exits_6(cli: Cli) -> None:
    result = cli("share", "--ttl", "10s", input=b"x")

    assert result.exit_code == 6
    assert one_line(result.stderr)
    assert "ttl: must be from 60" in result.stderr


def test_share_too_large_exits_6_with_the_limit(cli: Cli) -> None:
    result = cli("share", input=b"x" * (MAX_BYTES + 2048))

    assert result.exit_code == 6
    assert one_line(result.stderr)
    assert f"limit of {MAX_BYTES} bytes" in result.stderr


def test_share_empty_secret_exits_6(cli: Cli) -> None:
    result = cli("share", input=b"")

    assert result.exit_code == 6
    assert "empty" in result.stderr


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("not a link", id="not-a-url"),
        pytest.param(f"ftp://127.0.0.1:1/s/{SOME_ID}#{SOME_KEY}", id="ftp"),
        pytest.param(f"http://127.0.0.1:1/s/short#{SOME_KEY}", id="bad-id"),
        pytest.param(f"http://127.0.0.1:1/s/{SOME_ID}", id="no-key"),
        pytest.param(f"http://127.0.0.1:1/s/{SOME_ID}#{SOME_KEY[:-1]}", id="short-key"),
        pytest.param(f"http://127.0.0.1:1/m/{SOME_ID}#{SOME_KEY}", id="manage-link"),
        pytest.param(f"http://127.0.0.1:1/x/{SOME_ID}#{SOME_KEY}", id="other-path"),
        pytest.param(f"http://u:p@127.0.0.1:1/s/{SOME_ID}#{SOME_KEY}", id="userinfo"),
    ],
)
def test_get_malformed_link_exits_6(cli: Cli, link: str) -> None:
    result = cli("get", link)

    assert result.exit_code == 6
    assert one_line(result.stderr)
    assert SOME_KEY[:-1] not in result.stderr


def test_commands_exit_5_when_the_server_is_unreachable(cli: Cli) -> None:
    manage_link = f"{DEAD_SERVER}/m/{SOME_ID}#{SOME_KEY}"

    results = [
        cli("share", "--server", DEAD_SERVER, input=b"x"),
        cli("get", f"{DEAD_SERVER}/s/{SOME_ID}#{SOME_KEY}"),
        cli("status", manage_link),
        cli("burn", manage_link),
    ]

    assert [r.exit_code for r in results] == [5] * 4
    assert all(one_line(r.stderr) and SOME_KEY not in r.stderr for r in results)


def test_status_shows_state_and_events_after_a_get(cli: Cli) -> None:
    created = cli.share_json(b"watched")
    cli("get", str(created["url"]))

    result = cli("status", str(created["manage_url"]))

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "State:    viewed" in lines
    assert "Views:    1 used, 0 left (of 1)" in lines
    proof = next(i for i, line in enumerate(lines) if line.startswith("Proof of destruction"))
    events = [line.split() for line in lines[lines.index("Events:") + 1 : proof]]
    assert [e[1] for e in events] == ["created", "viewed"]
    assert all(e[2] == "127.0.0.1" and e[4:] == ["burnlink-cli", "(cli)"] for e in events)
    assert '"how":"viewed"' in lines[proof + 1].replace(" ", "")


def test_burn_then_get_exits_3(cli: Cli) -> None:
    created = cli.share_json(b"burn me", "--views", "3")

    burned = cli("burn", str(created["manage_url"]))
    got = cli("get", str(created["url"]))
    status = cli("status", str(created["manage_url"]))

    assert burned.exit_code == 0
    assert got.exit_code == 3
    assert "State:    burned" in status.stdout


def test_get_json_and_output_together_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("get", "--json", "--output", str(tmp_path / "x"), f"{DEAD_SERVER}/s/{SOME_ID}")

    assert result.exit_code == 2


@pytest.mark.parametrize("command", ["serve", "share", "get", "status", "burn"])
def test_every_command_has_help(cli: Cli, command: str) -> None:
    result = cli(command, "--help")

    assert result.exit_code == 0
    assert "Exit codes" in result.stdout


def test_main_help_lists_every_exit_code(cli: Cli) -> None:
    from burnlink.cli.output import ExitCode

    result = cli("--help")
    text = " ".join(result.stdout.split("Exit codes:", 1)[1].split())
    listed = [int(n) for n in re.findall(r"(?:^|, )(\d+) [a-z]", text.strip())]

    assert listed == [int(code) for code in ExitCode]


def test_main_version(cli: Cli) -> None:
    result = cli("--version")

    assert result.exit_code == 0
    assert result.stdout.startswith("burnlink ")


# Unset while serve runs, and restored after: serve exports its options to the environment.
_SERVE_ENV: dict[str, str | None] = dict.fromkeys(
    ("BURNLINK_HOST", "BURNLINK_PORT", "BURNLINK_STORE", "BURNLINK_WORKERS", "BURNLINK_BASE_URL")
)


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        pytest.param("--port", "0", "BURNLINK_PORT", id="port"),
        pytest.param("--store", "bogus://x", "BURNLINK_STORE", id="store-scheme"),
        pytest.param("--base-url", "ftp://x", "BURNLINK_BASE_URL", id="base-url"),
        pytest.param("--host", "0.0.0.0", "BURNLINK_BASE_URL", id="public-without-base"),  # noqa: S104 - refused, never bound
    ],
)
def test_serve_invalid_setting_exits_7(cli: Cli, option: str, value: str, named: str) -> None:
    result = cli("serve", option, value, env=_SERVE_ENV)

    assert result.exit_code == 7
    assert one_line(result.stderr)
    assert named in result.stderr


@pytest.mark.parametrize(
    ("store", "shown"),
    [
        pytest.param("redis://:hunter2@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0", id="redis"),
        pytest.param(
            "postgresql://burn:hunter2@127.0.0.1:1/burn",
            "postgresql://burn:***@127.0.0.1:1/burn",
            id="postgresql",
        ),
    ],
)
def test_serve_unreachable_store_names_it_and_the_cause(cli: Cli, store: str, shown: str) -> None:
    result = cli("serve", "--store", store, env=_SERVE_ENV)

    assert result.exit_code == 5
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"burnlink: Cannot open the secret store {shown}: ")
    assert "refused" in line.lower()
    assert "hunter2" not in result.stderr


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BURNLINK_")}
    return {**env, **extra}


def test_share_and_get_work_through_real_pipes(server: str) -> None:
    secret = "tøken with a trailing newline\n".encode() + b"\xff\x00 and binary"
    env = _environment(BURNLINK_SERVER=server)

    shared = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        argv("share"), input=secret, capture_output=True, env=env, timeout=SUBPROCESS_TIMEOUT
    )
    link = shared.stdout.decode().strip()
    got = subprocess.run(  # noqa: S603
        argv("get", link), capture_output=True, env=env, timeout=SUBPROCESS_TIMEOUT
    )

    assert shared.returncode == 0, shared.stderr
    assert LINK_RE.fullmatch(shared.stdout.decode())
    assert fragment(link).encode() not in shared.stderr
    assert got.returncode == 0, got.stderr
    assert got.stdout == secret


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_runs_a_server_the_cli_can_use() -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        argv("serve", "--port", str(port), "--store", "memory://"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_environment(),
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "burnlink serve exited"
            assert time.monotonic() < deadline, "burnlink serve did not start"
            time.sleep(0.05)
        served = Cli(base)
        link = served.share(b"via serve")
        got = served("get", link)
    finally:
        process.terminate()
        _, log = process.communicate(timeout=SUBPROCESS_TIMEOUT)

    assert got.stdout_bytes == b"via serve"
    assert f"listening on {base}" in log.decode()
    assert "store memory://" in log.decode()


# What `burnlink share` must not load: the server's stack, and httpx's own command-line client
# (rich, pygments). Each costs tens of milliseconds of the cold start (docs/operations.md).
_NOT_FOR_SHARE = ("fastapi", "starlette", "uvicorn", "pydantic", "jinja2", "redis", "psycopg",
                  "prometheus_client", "rich", "pygments")  # fmt: skip


def test_share_loads_no_server_modules_nor_httpx_cli(server: str) -> None:
    env = _environment(BURNLINK_SERVER=server)
    shared = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "burnlink", "share"],
        input=b"s3cr3t",
        capture_output=True,
        env=env,
        timeout=SUBPROCESS_TIMEOUT,
    )

    assert shared.returncode == 0, shared.stderr
    assert LINK_RE.fullmatch(shared.stdout.decode())
    loaded = {
        line.rpartition("|")[2].strip().split(".")[0]
        for line in shared.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "httpx" in loaded  # the list below is read from a real import trace
    assert loaded.isdisjoint(_NOT_FOR_SHARE), sorted(loaded.intersection(_NOT_FOR_SHARE))
