"""``burnlink config check`` with sign-in: the settings shown, the client secret masked, an
unreadable secret file refused with one line."""

from __future__ import annotations

from pathlib import Path

from tests.cli.harness import Cli

SIGN_IN = {
    "BURNLINK_OIDC_ISSUER": "https://login.example.com/realms/main",
    "BURNLINK_OIDC_CLIENT_ID": "burnlink",
}


def test_config_check_shows_sign_in_with_the_secret_masked(cli: Cli) -> None:
    result = cli(
        "config",
        "check",
        env={**SIGN_IN, "BURNLINK_OIDC_CLIENT_SECRET": "very-secret-client-value"},
    )

    assert result.exit_code == 0
    assert "BURNLINK_OIDC_ISSUER = https://login.example.com/realms/main" in result.stdout
    assert "BURNLINK_OIDC_CLIENT_SECRET = **********" in result.stdout
    assert "BURNLINK_OIDC_REQUIRE_MFA = False" in result.stdout
    assert "very-secret-client-value" not in result.stdout


def test_config_check_refuses_an_unreadable_secret_file(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "missing"

    result = cli(
        "config",
        "check",
        env={**SIGN_IN, "BURNLINK_OIDC_CLIENT_SECRET_FILE": str(missing)},
    )

    assert result.exit_code == 7
    assert "BURNLINK_OIDC_CLIENT_SECRET_FILE: cannot read" in result.stderr


def test_config_check_refuses_half_a_client(cli: Cli) -> None:
    result = cli("config", "check", env=SIGN_IN)

    assert result.exit_code == 7
    assert "BURNLINK_OIDC_CLIENT_ID and BURNLINK_OIDC_CLIENT_SECRET" in result.stderr
