"""Sign-in settings: off by default, validated with one clear line, the secret masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from burnlink.config import DEFAULT_MFA_AMR, https_or_loopback, load_settings
from burnlink.errors import ConfigError

ISSUER = "https://login.example.com/realms/main"
CLIENT = {"oidc_issuer": ISSUER, "oidc_client_id": "burnlink", "oidc_client_secret": "s3cret-value"}


def test_sign_in_is_off_by_default() -> None:
    settings = load_settings(store="memory://")

    assert not settings.sign_in
    assert settings.oidc_scopes == "openid email profile"
    assert (settings.oidc_email_claim, settings.oidc_groups_claim) == ("email", "groups")
    assert settings.oidc_require_mfa is False
    assert tuple(settings.oidc_mfa_amr) == DEFAULT_MFA_AMR
    assert "pwd" not in settings.oidc_mfa_amr
    assert (settings.oidc_mfa_acr, settings.oidc_max_age) == ([], 300)


def test_sign_in_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNLINK_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("BURNLINK_OIDC_CLIENT_ID", "burnlink")
    monkeypatch.setenv("BURNLINK_OIDC_CLIENT_SECRET", "s3cret-value")
    monkeypatch.setenv("BURNLINK_OIDC_MFA_AMR", "otp, hwk")
    monkeypatch.setenv("BURNLINK_OIDC_MFA_ACR", "urn:burnlink:mfa")
    monkeypatch.setenv("BURNLINK_OIDC_REQUIRE_MFA", "true")
    monkeypatch.setenv("BURNLINK_SESSION_IDLE_TIMEOUT", "600")

    settings = load_settings(store="memory://")

    assert settings.sign_in
    assert settings.oidc_secret() == "s3cret-value"
    assert (settings.oidc_mfa_amr, settings.oidc_mfa_acr) == (["otp", "hwk"], ["urn:burnlink:mfa"])
    assert settings.oidc_require_mfa
    assert settings.session_idle_timeout == 600


def test_client_secret_is_read_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n", encoding="utf-8")

    settings = load_settings(
        store="memory://",
        oidc_issuer=ISSUER,
        oidc_client_id="burnlink",
        oidc_client_secret_file=str(secret),
    )

    assert settings.oidc_secret() == "from-a-file"


def test_unreadable_client_secret_file_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(
        store="memory://",
        oidc_issuer=ISSUER,
        oidc_client_id="burnlink",
        oidc_client_secret_file=str(tmp_path / "missing"),
    )

    with pytest.raises(ConfigError, match="BURNLINK_OIDC_CLIENT_SECRET_FILE: cannot read"):
        settings.oidc_secret()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {**CLIENT, "oidc_issuer": "http://login.example.com"},
            "BURNLINK_OIDC_ISSUER: must be an https:// URL",
            id="issuer-http",
        ),
        pytest.param(
            {**CLIENT, "oidc_issuer": "https://login.example.com/?x=1"},
            "BURNLINK_OIDC_ISSUER: must be an https:// URL",
            id="issuer-query",
        ),
        pytest.param(
            {"oidc_issuer": ISSUER},
            "BURNLINK_OIDC_CLIENT_ID and BURNLINK_OIDC_CLIENT_SECRET (or _FILE) are required",
            id="no-client",
        ),
        pytest.param(
            {"oidc_issuer": ISSUER, "oidc_client_id": "burnlink"},
            "BURNLINK_OIDC_CLIENT_ID and BURNLINK_OIDC_CLIENT_SECRET (or _FILE) go together",
            id="id-without-secret",
        ),
        pytest.param(
            {"oidc_issuer": ISSUER, "oidc_client_secret": "x"},
            "go together",
            id="secret-without-id",
        ),
        pytest.param(
            {**CLIENT, "oidc_client_secret_file": "/etc/secret"},
            "not both",
            id="secret-twice",
        ),
        pytest.param(
            {"oidc_client_id": "burnlink", "oidc_client_secret": "x"},
            "BURNLINK_OIDC_ISSUER is required",
            id="client-without-issuer",
        ),
        pytest.param(
            {**CLIENT, "oidc_scopes": "email profile"},
            'BURNLINK_OIDC_SCOPES: must include "openid"',
            id="scopes-without-openid",
        ),
        pytest.param(
            {**CLIENT, "base_url": "http://secrets.example.com"},
            "BURNLINK_BASE_URL must be https://",
            id="base-http",
        ),
        pytest.param(
            {**CLIENT, "session_idle_timeout": 7200, "session_max_age": 3600},
            "must not exceed BURNLINK_SESSION_MAX_AGE",
            id="idle-over-max",
        ),
        pytest.param({**CLIENT, "oidc_max_age": 5}, "BURNLINK_OIDC_MAX_AGE", id="max-age"),
        pytest.param(
            {**CLIENT, "oidc_mfa_amr": "otp, two words"}, "BURNLINK_OIDC_MFA_AMR", id="amr"
        ),
    ],
)
def test_invalid_sign_in_settings_raise_one_clear_config_error(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(store="memory://", **overrides)

    assert message in str(caught.value)
    assert "s3cret-value" not in str(caught.value)


def test_loopback_http_issuer_and_base_are_allowed() -> None:
    settings = load_settings(
        store="memory://",
        **{**CLIENT, "oidc_issuer": "http://127.0.0.1:9000"},
        base_url="http://localhost:8000",
    )

    assert settings.oidc_issuer == "http://127.0.0.1:9000"


def test_config_check_masks_the_client_secret() -> None:
    masked = load_settings(store="memory://", **CLIENT).masked()

    assert "s3cret-value" not in repr(masked)
    assert masked["oidc_issuer"] == ISSUER


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://login.example.com", True),
        ("https://login.example.com/tenant/v2.0", True),
        ("http://127.0.0.1:9000/", True),
        ("http://[::1]:9000", True),
        ("http://localhost:9000", True),
        ("http://login.example.com", False),
        ("https://user:pw@login.example.com", False),
        ("https://login.example.com#x", False),
        ("ftp://login.example.com", False),
        ("https://", False),
        ("https://login.example.com/a b", False),
    ],
)
def test_https_or_loopback(url: str, allowed: bool) -> None:
    assert https_or_loopback(url) is allowed
