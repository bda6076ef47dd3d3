"""Secret settings from files: ``BURNLINK_<NAME>_FILE`` (Docker and Kubernetes secrets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from burnlink.config import load_settings
from burnlink.errors import ConfigError
from burnlink.setting_files import FILE_SETTINGS, MAX_FILE_BYTES

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

# A valid value of each setting, as a file would hold it (with the newline `echo` leaves).
VALUES = {
    "store": "postgresql://burnlink:pg-pass-1@db:5432/burnlink",
    "audit_store": "postgresql://audit:pg-pass-2@db:5432/audit",
    "smtp_url": "smtp://mailer:smtp-pass-3@mail:587",
    "audit_key": "ab" * 32,
    "signing_key": "cd" * 32,
    "admin_token": "admin-token-from-a-file",
    "metrics_token": "metrics-token-from-a-file",
    "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "alert_url": "https://hooks.slack.com/services/T0/B0/slacktoken",
    "audit_checkpoint_url": "https://hooks.example.com/anchor/cptoken",
    "slack_signing_secret": "8f742231b10e8888abcd99yyyzzz85a5",
}
# What some settings need beside them to be valid.
NEEDS = {
    "smtp_url": {"smtp_from": "burnlink@example.org"},
    "alert_url": {"webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    "audit_checkpoint_url": {"webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("BURNLINK_")]:
        monkeypatch.delenv(name)


def _secret_file(tmp_path: Path, content: str | bytes, name: str = "secret") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_every_secret_setting_may_come_from_a_file() -> None:
    assert set(VALUES) == set(FILE_SETTINGS)


@pytest.mark.parametrize("name", FILE_SETTINGS)
def test_a_setting_file_gives_the_value_without_its_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(
        f"BURNLINK_{name.upper()}_FILE", str(_secret_file(tmp_path, VALUES[name] + "\n"))
    )

    settings = load_settings(**NEEDS.get(name, {}))

    value = getattr(settings, name)
    shown = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    assert shown == VALUES[name]


def test_the_variable_and_its_file_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURNLINK_ADMIN_TOKEN", "admin-token-from-the-env")
    monkeypatch.setenv(
        "BURNLINK_ADMIN_TOKEN_FILE", str(_secret_file(tmp_path, "other-token-value"))
    )

    with pytest.raises(ConfigError, match="set BURNLINK_ADMIN_TOKEN or BURNLINK_ADMIN_TOKEN_FILE"):
        load_settings()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param("", "is empty", id="empty"),
        pytest.param(" \n\t\n", "is empty", id="blank"),
        pytest.param(b"\xff\xfeadmin-token", "is not UTF-8 text", id="not-utf8"),
        pytest.param(
            "x" * (MAX_FILE_BYTES + 1), f"is larger than {MAX_FILE_BYTES} bytes", id="huge"
        ),
    ],
)
def test_an_unusable_file_names_the_variable_and_the_path_never_the_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | bytes, problem: str
) -> None:
    path = _secret_file(tmp_path, content)
    monkeypatch.setenv("BURNLINK_ADMIN_TOKEN_FILE", str(path))

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert str(raised.value) == f"BURNLINK_ADMIN_TOKEN_FILE: {path} {problem}"


def test_a_missing_file_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNLINK_SIGNING_KEY_FILE", str(tmp_path / "nope"))

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert str(raised.value) == (
        f"BURNLINK_SIGNING_KEY_FILE: cannot read {tmp_path / 'nope'} (No such file or directory)"
    )


def test_a_value_from_a_file_is_validated_like_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURNLINK_AUDIT_KEY_FILE", str(_secret_file(tmp_path, "short-key\n")))

    with pytest.raises(ConfigError, match="BURNLINK_AUDIT_KEY") as raised:
        load_settings()

    assert "short-key" not in str(raised.value)


def test_a_file_wins_over_the_config_file_and_loses_to_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "burnlink.toml"
    config.write_text('store = "memory://"\nadmin_token = "token-from-the-toml-file"\n')
    monkeypatch.setenv("BURNLINK_CONFIG", str(config))
    monkeypatch.setenv("BURNLINK_STORE_FILE", str(_secret_file(tmp_path, VALUES["store"])))
    monkeypatch.setenv(
        "BURNLINK_ADMIN_TOKEN_FILE", str(_secret_file(tmp_path, "token-from-a-file!", "token"))
    )

    settings = load_settings()
    assert settings.store == VALUES["store"]
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "token-from-a-file!"
    assert load_settings(store="memory://").store == "memory://"


def test_config_check_masks_what_came_from_files_and_fails_on_a_bad_one(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BURNLINK_")},
        "BURNLINK_STORE_FILE": str(_secret_file(tmp_path, VALUES["store"] + "\n")),
        "BURNLINK_ADMIN_TOKEN_FILE": str(_secret_file(tmp_path, VALUES["admin_token"], "token")),
    }
    command = [sys.executable, "-m", "burnlink", "config", "check"]

    shown = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - our own CLI

    assert shown.returncode == 0, shown.stderr
    assert "burnlink:***@db:5432/burnlink" in shown.stdout
    assert "pg-pass-1" not in shown.stdout + shown.stderr
    assert VALUES["admin_token"] not in shown.stdout + shown.stderr

    env["BURNLINK_ADMIN_TOKEN_FILE"] = str(tmp_path / "missing")
    failed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - our own CLI

    assert failed.returncode == 7
    assert f"BURNLINK_ADMIN_TOKEN_FILE: cannot read {tmp_path / 'missing'}" in failed.stderr


def test_every_file_variable_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")

    for name in FILE_SETTINGS:
        assert f"`BURNLINK_{name.upper()}_FILE`" in text, name
