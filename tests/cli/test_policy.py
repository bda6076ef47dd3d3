"""``burnlink share`` follows the server's policy: its size limit and its PBKDF2 minimum."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from burnlink.cli.links import parse_secret_link
from burnlink.crypto import access_token
from burnlink.ids import b64url_encode
from tests.cli.harness import MAX_BYTES, Cli, running_server, server_settings

PASSPHRASE = "correct horse battery"
STRICT_ITERATIONS = 700_000


@pytest.fixture(scope="module")
def strict_server() -> Iterator[str]:
    """A server whose PBKDF2 minimum is above envelope v1's 600000."""
    settings = server_settings(pbkdf2_iterations=STRICT_ITERATIONS)
    with running_server(settings) as base:
        yield base


def test_share_accepts_exactly_the_size_limit(cli: Cli) -> None:
    secret = b"x" * MAX_BYTES
    link = cli.share(secret)

    assert cli("get", link).stdout_bytes == secret


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"x" * (MAX_BYTES + 1), id="ascii"),
        pytest.param("é".encode() * (MAX_BYTES // 2) + b"x", id="utf8-bytes-not-characters"),
    ],
)
def test_share_refuses_one_byte_over_the_limit_before_sending(cli: Cli, content: bytes) -> None:
    """The limit counts the secret's bytes; the payload header is not the user's to spend."""
    result = cli("share", "--json", input=content)

    assert result.exit_code == 6
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "payload_too_large"
    assert error["field"] == "secret"
    assert f"limit of {MAX_BYTES} bytes" in error["message"]
    assert result.stdout == ""


def test_share_file_boundary(cli: Cli, tmp_path: Path) -> None:
    at_limit, over = tmp_path / "at.bin", tmp_path / "over.bin"
    at_limit.write_bytes(b"\x00" * MAX_BYTES)
    over.write_bytes(b"\x00" * (MAX_BYTES + 1))

    assert cli("share", "--file", str(at_limit)).exit_code == 0
    refused = cli("share", "--file", str(over))
    assert refused.exit_code == 6
    assert f"limit of {MAX_BYTES} bytes" in refused.stderr


def test_share_uses_the_server_pbkdf2_minimum(strict_server: str) -> None:
    cli = Cli(strict_server)
    env = {"BURNLINK_PASSPHRASE": PASSPHRASE}

    link = cli.share(b"s3cret", env=env)

    parsed = parse_secret_link(link)
    info = httpx.get(
        f"{strict_server}/api/v1/secrets/{parsed.secret_id}",
        headers={"Authorization": f"Bearer {b64url_encode(access_token(parsed.token))}"},
    ).json()
    assert info["passphrase"]["iterations"] == STRICT_ITERATIONS
    assert cli("get", link, env=env).stdout_bytes == b"s3cret"
