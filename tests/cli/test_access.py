"""Access rules from the command line: share flags, the recipient's code on get, config check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from burnlink.clock import FrozenClock
from burnlink.config import load_settings
from tests.cli.harness import Cli, running_server
from tests.mail import Outbox


@pytest.fixture
def mailing_cli(outbox: Outbox) -> Iterator[Cli]:
    """A server that can mail verification codes, and the CLI pointed at it."""
    settings = load_settings(
        store="memory://",
        smtp_url=f"smtp://127.0.0.1:{outbox.port}",
        smtp_from="burnlink@example.org",
        rate_limit_failures="off",
    )
    with running_server(settings) as base:
        yield Cli(base)


def test_share_allow_ip_refuses_other_networks(cli: Cli) -> None:
    link = cli.share(b"office only", "--allow-ip", "203.0.113.0/24", "--allow-ip", "2001:db8::/32")

    refused = cli("get", link)

    assert refused.exit_code == 4
    assert "network address is not allowed" in refused.stderr
    assert cli.share(b"x", "--allow-ip", "127.0.0.0/8") != ""


def test_share_allow_ip_admits_the_listed_network(cli: Cli) -> None:
    link = cli.share(b"loopback only", "--allow-ip", "127.0.0.0/8")

    result = cli("get", link)

    assert (result.exit_code, result.stdout_bytes) == (0, b"loopback only")


def test_share_allow_country_refuses_unknown_places(cli: Cli) -> None:
    link = cli.share(b"de only", "--allow-country", "de")

    refused = cli("get", link)

    assert refused.exit_code == 4
    assert "location" in refused.stderr


@pytest.mark.parametrize(
    "options",
    [
        ("--allow-ip", "not-a-network"),
        ("--allow-country", "XX"),
        ("--deny-country", "Germany"),
    ],
)
def test_share_refuses_invalid_rules(cli: Cli, options: tuple[str, str]) -> None:
    result = cli("share", *options, input=b"x")

    assert result.exit_code == 6
    assert result.stdout == ""


def test_recipient_email_needs_a_server_that_can_mail(cli: Cli) -> None:
    result = cli("share", "--recipient-email", "bob@example.com", input=b"x")

    assert result.exit_code == 6
    assert "email verification is not configured" in result.stderr


def test_get_with_recipient_code(mailing_cli: Cli, outbox: Outbox) -> None:
    link = mailing_cli.share(b"for bob", "--recipient-email", "bob@example.com")

    asked = mailing_cli("get", link)
    code = outbox.codes()[-1]
    wrong = mailing_cli("get", link, "--otp", f"{(int(code) + 1) % 10**6:06d}")
    right = mailing_cli("get", link, env={"BURNLINK_OTP": code})

    assert asked.exit_code == 4
    assert "b***@example.com" in asked.stderr
    assert "--otp" in asked.stderr
    assert wrong.exit_code == 4
    assert "4 attempts left" in wrong.stderr
    assert (right.exit_code, right.stdout_bytes) == (0, b"for bob")
    assert link.partition("#")[2] not in outbox.messages[-1][2].as_string()


def test_get_says_the_secret_is_destroyed_once_its_codes_are_spent(outbox: Outbox) -> None:
    clock = FrozenClock()
    settings = load_settings(
        store="memory://",
        smtp_url=f"smtp://127.0.0.1:{outbox.port}",
        smtp_from="burnlink@example.org",
        rate_limit_failures="off",
        rate_limit_secret_failures="off",
    )
    with running_server(settings, clock) as base:
        cli = Cli(base)
        link = cli.share(b"for bob", "--recipient-email", "bob@example.com")
        for _ in range(3):
            assert cli("get", link).exit_code == 4
            wrong = f"{(int(outbox.codes()[-1]) + 1) % 10**6:06d}"
            for _ in range(5):
                cli("get", link, "--otp", wrong)
            clock.advance(61)

        locked = cli("get", link)
        after = cli("get", link)

    assert len(outbox.messages) == 3
    assert locked.exit_code == 4
    assert "destroyed" in locked.stderr
    assert "new link" in locked.stderr
    assert after.exit_code == 3


def test_get_says_why_a_client_is_locked_and_for_how_long() -> None:
    settings = load_settings(store="memory://", rate_limit_failures="1/7 days")
    with running_server(settings) as base:
        cli = Cli(base)
        link = cli.share(b"once")
        assert cli("get", link).exit_code == 0
        used = cli("get", link)
        locked = cli("get", link)

    assert used.exit_code == 3
    assert locked.exit_code == 5
    assert "Too many failed attempts from your network" in locked.stderr
    assert "try again in" in locked.stderr


def test_get_refuses_a_malformed_code(mailing_cli: Cli) -> None:
    link = mailing_cli.share(b"for bob", "--recipient-email", "bob@example.com")

    result = mailing_cli("get", link, "--otp", "12ab")

    assert result.exit_code == 6


def test_config_check_prints_masked_settings(cli: Cli) -> None:
    result = cli(
        "config",
        "check",
        env={"BURNLINK_STORE": "postgresql://app:hunter2@db/burn", "BURNLINK_MAX_VIEWS": "7"},
    )

    assert result.exit_code == 0
    assert "BURNLINK_STORE = postgresql://app:***@db/burn" in result.stdout
    assert "BURNLINK_MAX_VIEWS = 7" in result.stdout
    assert "hunter2" not in result.stdout


def test_config_check_exits_7_on_invalid_settings(cli: Cli) -> None:
    result = cli("config", "check", env={"BURNLINK_RATE_LIMIT_CREATE": "lots"})

    assert result.exit_code == 7
    assert "BURNLINK_RATE_LIMIT_CREATE" in result.stderr
