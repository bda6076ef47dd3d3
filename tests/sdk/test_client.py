"""``Client`` and ``AsyncClient`` against one real server: what a program sharing and reading
secrets relies on (exact bytes, one view, passphrases, rules, receipts, typed errors)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from burnlink import AsyncClient, Client
from burnlink.sdk import (
    InvalidInput,
    IpDenied,
    PassphraseRequired,
    PayloadTooLarge,
    SecretUnavailable,
    ServerUnavailable,
    WrongPassphrase,
)
from tests.cli.harness import MAX_BYTES, Cli, running_server, server_settings


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(server_settings()) as base:
        yield base


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    with Client(server) as client:
        yield client


def test_share_then_get_returns_the_exact_bytes_once(client: Client) -> None:
    secret = "db password: hunter2 \u00e9\u6771\n"
    shared = client.share(secret, ttl=600)

    assert shared.url.startswith(f"{client.server}/s/{shared.id}#")
    assert shared.manage_url.startswith(f"{client.server}/m/{shared.id}#")
    assert shared.max_views == 1
    assert client.get(shared.url) == secret.encode()
    with pytest.raises(SecretUnavailable) as gone:
        client.get(shared.url)
    assert gone.value.code == "not_found"


def test_the_server_never_sees_the_key_and_its_curl_mode_opens_the_same_envelope(
    client: Client, server: str
) -> None:
    shared = client.share(b"\x00\xffraw", filename="key.bin")
    secret_id, key = shared.id, shared.url.partition("#")[2]

    answer = httpx.post(f"{server}/api/v1/secrets/{secret_id}/reveal", json={"key": key}).json()

    assert answer["file"] == {
        "name": "key.bin",
        "mime": "application/octet-stream",
        "content_base64": "AP9yYXc=",
    }


def test_a_file_keeps_its_name_and_type(client: Client) -> None:
    shared = client.share(b"PEM", filename="id.pem", mime="application/x-pem-file", views=2)

    first = client.reveal(shared.url)
    second = client.reveal(shared.url)

    assert (first.content, first.is_file, first.name, first.mime) == (
        b"PEM",
        True,
        "id.pem",
        "application/x-pem-file",
    )
    assert (first.views_left, second.views_left) == (1, 0)
    assert "PEM" not in repr(first)


def test_bytes_that_are_not_utf8_are_a_file_and_utf8_bytes_are_text(client: Client) -> None:
    binary = client.reveal(client.share(b"\xff\xfe").url)
    text = client.reveal(client.share(b"plain").url)

    assert (binary.is_file, binary.content) == (True, b"\xff\xfe")
    assert (text.is_file, text.text()) == (False, "plain")


def test_a_passphrase_is_asked_only_when_needed_and_wrong_ones_count(client: Client) -> None:
    shared = client.share("s3cret", passphrase="correct horse")
    asked: list[str] = []

    def ask(answer: str) -> str:
        asked.append(answer)
        return answer

    with pytest.raises(PassphraseRequired) as required:
        client.get(shared.url)
    with pytest.raises(WrongPassphrase) as wrong:
        client.get(shared.url, passphrase="Correct Horse")

    assert (required.value.code, required.value.attempts_left) == ("passphrase_required", 5)
    assert (wrong.value.code, wrong.value.attempts_left) == ("wrong_passphrase", 4)
    assert client.get(shared.url, passphrase=lambda: ask("correct horse")) == b"s3cret"
    assert asked == ["correct horse"]
    plain = client.share("no passphrase")
    assert client.get(plain.url, passphrase=lambda: ask("never")) == b"no passphrase"
    assert asked == ["correct horse"]


def test_status_and_burn_through_the_manage_link(client: Client) -> None:
    shared = client.share("to burn", views=3)
    client.get(shared.url)

    before = client.status(shared.manage_url)
    client.burn(shared.manage_url)
    after = client.status(shared.manage_url)

    assert (before.state, before.views_used, before.views_left) == ("active", 1, 2)
    assert [e.type for e in before.events] == ["created", "viewed"]
    assert before.events[1].agent == "burnlink-python (cli)"
    assert after.state == "burned"
    assert after.statement is not None
    with pytest.raises(SecretUnavailable):
        client.get(shared.url)


def test_access_rules_are_sent_and_enforced(client: Client) -> None:
    shared = client.share("only from 10/8", allowed_ips=["10.0.0.0/8"], label="ignored?")

    with pytest.raises(IpDenied) as denied:
        client.get(shared.url)

    assert denied.value.code == "ip_denied"
    assert client.status(shared.manage_url).state == "active"


def test_refusals_are_typed_with_the_api_code_and_field(client: Client) -> None:
    with pytest.raises(InvalidInput) as ttl:
        client.share("x", ttl=1)
    with pytest.raises(InvalidInput) as country:
        client.share("x", allowed_countries=["Narnia"])
    with pytest.raises(PayloadTooLarge) as large:
        client.share(b"a" * (MAX_BYTES + 1))

    assert (ttl.value.code, ttl.value.field) == ("invalid_field", "ttl")
    assert country.value.code == "invalid_field"
    assert large.value.code == "payload_too_large"  # refused here: nothing was sent


def test_links_and_servers_are_checked_before_anything_is_sent(client: Client) -> None:
    with pytest.raises(InvalidInput) as no_key:
        client.get(f"{client.server}/s/AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(InvalidInput) as no_server:
        Client().share("x")
    with pytest.raises(InvalidInput) as bad_server:
        Client("ftp://x")
    with Client("http://127.0.0.1:9") as unreachable, pytest.raises(ServerUnavailable):
        unreachable.share("x")

    assert "#" in str(no_key.value)
    assert no_server.value.field == "server"
    assert bad_server.value.field == "server"


def test_the_cli_reads_what_the_sdk_shares_and_the_reverse(client: Client, server: str) -> None:
    cli = Cli(server)
    by_sdk = client.share("from the SDK")
    by_cli = cli.share(b"from the CLI", "--views", "1")

    assert cli("get", by_sdk.url).stdout_bytes == b"from the SDK"
    assert client.get(by_cli) == b"from the CLI"


@pytest.mark.anyio
async def test_async_client_shares_reads_checks_and_burns(server: str) -> None:
    async with AsyncClient(server) as client:
        shared = await client.share("async", passphrase="pw", views=2)
        revealed = await client.reveal(shared.url, passphrase="pw")
        receipt = await client.status(shared.manage_url)
        await client.burn(shared.manage_url)
        with pytest.raises(SecretUnavailable):
            await client.get(shared.url, passphrase="pw")
        policy = await client.policy()

    assert (revealed.content, revealed.views_left) == (b"async", 1)
    assert (receipt.state, receipt.views_used) == ("active", 1)
    assert policy.max_bytes == MAX_BYTES
