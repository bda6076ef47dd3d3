"""Settings: defaults, validation with one clear line, and documentation of every field."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from burnlink.config import Settings, load_settings
from burnlink.errors import ConfigError
from burnlink.store import open_store

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_settings_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("BURNLINK_")]:
        monkeypatch.delenv(name)

    settings = load_settings()

    assert settings.store.startswith("sqlite://")
    assert settings.store.endswith("burnlink.db")
    assert (settings.min_ttl, settings.default_ttl, settings.max_ttl) == (60, 86400, 2592000)
    assert (settings.max_views, settings.passphrase_attempts) == (100, 5)
    assert (settings.max_bytes, settings.receipt_days) == (1048576, 30)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNLINK_MAX_VIEWS", "7")
    monkeypatch.setenv("BURNLINK_STORE", "memory://")

    settings = load_settings()

    assert (settings.max_views, settings.store) == (7, "memory://")


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNLINK_PORT", "9000")

    assert load_settings(port=9001).port == 9001


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        pytest.param("BURNLINK_MAX_TTL", "10", "BURNLINK_MAX_TTL", id="ttl-order"),
        pytest.param("BURNLINK_MAX_VIEWS", "zero", "BURNLINK_MAX_VIEWS", id="not-a-number"),
        pytest.param("BURNLINK_PORT", "70000", "BURNLINK_PORT", id="port-range"),
        pytest.param("BURNLINK_PBKDF2_ITERATIONS", "1000", "BURNLINK_PBKDF2_ITERATIONS", id="kdf"),
        pytest.param("BURNLINK_BASE_URL", "ftp://x", "BURNLINK_BASE_URL", id="base-url"),
        pytest.param("BURNLINK_LOG_LEVEL", "loud", "BURNLINK_LOG_LEVEL", id="log-level"),
        pytest.param("BURNLINK_AUDIT_STORE", "redis://x", "BURNLINK_AUDIT_STORE", id="audit-redis"),
        pytest.param("BURNLINK_AUDIT_KEY", "short", "BURNLINK_AUDIT_KEY", id="audit-key"),
        pytest.param("BURNLINK_AUDIT_DAYS", "-1", "BURNLINK_AUDIT_DAYS", id="audit-days"),
        pytest.param("BURNLINK_WEBHOOK_SECRET", "whsec_xx", "BURNLINK_WEBHOOK_SECRET", id="whsec"),
        pytest.param("BURNLINK_WEBHOOK_ALLOW", "a/b/c", "BURNLINK_WEBHOOK_ALLOW", id="allow"),
        pytest.param("BURNLINK_ALERT_URL", "http://h/x", "BURNLINK_WEBHOOK_SECRET", id="unsigned"),
        pytest.param("BURNLINK_ALERT_URL", "ftp://h/x", "BURNLINK_ALERT_URL", id="alert-url"),
        pytest.param(
            "BURNLINK_AUDIT_CHECKPOINT_URL",
            "http://h/x",
            "BURNLINK_WEBHOOK_SECRET",
            id="cp-unsigned",
        ),
        pytest.param(
            "BURNLINK_AUDIT_CHECKPOINT_URL",
            "ftp://h/x",
            "BURNLINK_AUDIT_CHECKPOINT_URL",
            id="cp-url",
        ),
        pytest.param(
            "BURNLINK_AUDIT_CHECKPOINT_INTERVAL",
            "0",
            "BURNLINK_AUDIT_CHECKPOINT_INTERVAL",
            id="cp-interval",
        ),
        pytest.param("BURNLINK_ADMIN_TOKEN", "short", "BURNLINK_ADMIN_TOKEN", id="admin-token"),
        pytest.param("BURNLINK_ALERT_NOT_FOUND", "often", "BURNLINK_ALERT_NOT_FOUND", id="alert"),
        pytest.param("BURNLINK_PROXY_HEADER", "client-ip", "BURNLINK_PROXY_HEADER", id="header"),
        pytest.param("BURNLINK_ALLOWED_HOSTS", "a.example/x", "BURNLINK_ALLOWED_HOSTS", id="hosts"),
        pytest.param("BURNLINK_HOST", "0.0.0.0", "BURNLINK_BASE_URL", id="public-no-base"),  # noqa: S104 - the address under test
        pytest.param("BURNLINK_HOST", "192.0.2.1", "BURNLINK_ALLOWED_HOSTS", id="lan-no-base"),
        pytest.param("BURNLINK_HOST", "burnlink.internal", "BURNLINK_BASE_URL", id="name-no-base"),
    ],
)
def test_invalid_settings_raise_one_clear_config_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"host": "127.0.0.1"}, id="loopback-v4"),
        pytest.param({"host": "127.0.0.2"}, id="loopback-v4-other"),
        pytest.param({"host": "::1"}, id="loopback-v6"),
        pytest.param({"host": "localhost"}, id="localhost"),
        pytest.param({"host": "0.0.0.0", "base_url": "https://s.example"}, id="base"),  # noqa: S104 - the address under test
        pytest.param({"host": "::", "allowed_hosts": "s.example, [2001:db8::1]:8443"}, id="hosts"),
    ],
)
def test_links_need_a_base_or_hosts_only_off_loopback(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]
) -> None:
    for name in [n for n in os.environ if n.startswith("BURNLINK_")]:
        monkeypatch.delenv(name)

    assert load_settings(**settings).host == settings["host"]


def test_proxy_header_and_hosts_are_normalised() -> None:
    settings = load_settings(proxy_header="X-Real-IP", allowed_hosts="S.Example, s.example:8443")

    assert settings.proxy_header == "x-real-ip"
    assert settings.allowed_hosts == ["s.example", "s.example:8443"]


def test_settings_are_frozen() -> None:
    settings = load_settings(store="memory://")

    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]  # the point: assignment must fail


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(BURNLINK_[A-Z0-9_]+)`", DOCS.read_text(encoding="utf-8")))
    fields = {f"BURNLINK_{name.upper()}" for name in Settings.model_fields}

    assert fields <= documented, fields - documented


def test_config_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "burnlink.toml"
    config.write_text(
        "max_ttl = 3600\ndefault_ttl = 600\nrequire_passphrase = true\n"
        'trusted_proxies = ["10.0.0.0/8"]\nrate_limit_reveal = "60/minute"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("BURNLINK_CONFIG", str(config))
    monkeypatch.setenv("BURNLINK_RATE_LIMIT_REVEAL", "10/minute")

    settings = load_settings(store="memory://")

    assert settings.max_ttl == 3600
    assert settings.require_passphrase is True
    assert settings.trusted_proxies == ["10.0.0.0/8"]
    assert settings.rate_limit_reveal == "10/minute"


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("nonsense_key = 1\n", "NONSENSE_KEY"),
        ("max_views = 0\n", "BURNLINK_MAX_VIEWS"),
        ('trusted_proxies = ["not a network"]\n', "BURNLINK_TRUSTED_PROXIES"),
    ],
)
def test_config_file_errors_name_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, named: str
) -> None:
    config = tmp_path / "burnlink.toml"
    config.write_text(content, encoding="utf-8")
    monkeypatch.setenv("BURNLINK_CONFIG", str(config))

    with pytest.raises(ConfigError, match=named):
        load_settings(store="memory://")


def test_missing_config_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURNLINK_CONFIG", str(tmp_path / "nope.toml"))

    with pytest.raises(ConfigError, match="BURNLINK_CONFIG"):
        load_settings()


def test_masked_settings_hide_passwords() -> None:
    settings = load_settings(
        store="postgresql://app:hunter2@db/burn",
        smtp_url="smtp://mailer:s3cr3t@mail:587",
        smtp_from="burnlink@example.org",
    )

    shown = str(settings.masked())

    assert "hunter2" not in shown
    assert "s3cr3t" not in shown
    assert "mailer:***@mail:587" in shown


def test_masked_settings_hide_keys_tokens_and_hook_urls() -> None:
    settings = load_settings(
        store="memory://",
        audit_store="postgresql://audit:pgpass@db/audit",
        audit_key="cd" * 32,
        admin_token="admin-token-value-123",
        webhook_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        alert_url="https://hooks.slack.com/services/T0/B0/slacktoken",
        audit_checkpoint_url="https://hooks.example.com/anchor/cptoken",
    )

    shown = str(settings.masked())

    for hidden in ("pgpass", "cd" * 32, "admin-token-value", "MfKQ9r8", "slacktoken", "cptoken"):
        assert hidden not in shown


@pytest.mark.parametrize(
    ("store", "audit"),
    [
        pytest.param(
            "sqlite:///nowhere/b.db", "sqlite:///nowhere/b-audit.db", id="sqlite-file-beside"
        ),
        pytest.param("sqlite://rel/b", "sqlite://rel/b-audit", id="sqlite-relative-no-suffix"),
        pytest.param("sqlite://:memory:", "sqlite://:memory:", id="sqlite-memory"),
        pytest.param("postgresql://db/b", "postgresql://db/b", id="postgres-same-db"),
        pytest.param("memory://", "memory://", id="memory"),
        pytest.param("redis://r:6379/0", "sqlite:///keys/audit.db", id="redis-to-key-dir"),
    ],
)
def test_the_audit_log_lives_beside_the_store_unless_told(store: str, audit: str) -> None:
    assert load_settings(store=store, key_dir="/keys").audit_url() == audit
    assert load_settings(store=store, audit_store="memory://").audit_url() == "memory://"


@pytest.mark.anyio
async def test_a_sqlite_store_file_that_holds_an_audit_log_keeps_it(tmp_path: Path) -> None:
    """A log started in the store's own file (the default before it had a file of its own)
    stays there: a new default must not start a second chain beside it. A store file
    without one, or none yet, gets the file beside it, and probing creates nothing."""
    from burnlink.audit import open_audit_store

    legacy, fresh, absent = (tmp_path / name for name in ("old.db", "new.db", "none.db"))
    audit = await open_audit_store(f"sqlite://{legacy}", key=bytes(32))
    await audit.aclose()
    store = await open_store(f"sqlite://{fresh}", retention=timedelta(days=1))
    await store.aclose()

    assert load_settings(store=f"sqlite://{legacy}").audit_url() == f"sqlite://{legacy}"
    assert (
        load_settings(store=f"sqlite://{fresh}").audit_url()
        == f"sqlite://{tmp_path / 'new-audit.db'}"
    )
    assert (
        load_settings(store=f"sqlite://{absent}").audit_url()
        == f"sqlite://{tmp_path / 'none-audit.db'}"
    )
    assert not absent.exists()
    assert not (tmp_path / "old-audit.db").exists()


def test_docs_config_error_example_is_the_real_output() -> None:
    """docs/configuration.md shows the one line an invalid setting prints: run it as shown."""
    example = re.search(
        r"```\n\$ (?P<env>BURNLINK_\w+=\S+) burnlink (?P<args>[^\n]+)\n(?P<out>[^\n]+)\n```",
        DOCS.read_text(encoding="utf-8"),
    )
    assert example is not None
    name, _, value = example["env"].partition("=")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BURNLINK_")}

    result = subprocess.run(  # noqa: S603 - our own CLI, arguments from our own docs
        [sys.executable, "-m", "burnlink", *example["args"].split()],
        env={**env, name: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 7
    assert result.stderr == example["out"] + "\n"


@pytest.mark.parametrize("variable", ["BURNLINK_TRUSTED_PROXIES", "BURNLINK_CREATE_ALLOWED_IPS"])
def test_network_lists_accept_fifty_entries_and_say_when_there_are_more(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """51 valid networks are refused for their number, not blamed on an entry."""
    entries = [f"10.0.0.{n}" for n in range(51)]
    monkeypatch.setenv(variable, ",".join(entries[:50]))
    assert len(getattr(load_settings(), variable.removeprefix("BURNLINK_").lower())) == 50

    monkeypatch.setenv(variable, ",".join(entries))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == f"invalid configuration: {variable}: at most 50 entries"
