"""deploy/compose: the compose file's promises, read from the file itself, and its secrets
script. The same topology runs for real in tests/browser/test_https_deployment.py (nginx for
Caddy, processes for containers: no image registry is reachable here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from burnlink.config import load_settings
from burnlink.setting_files import FILE_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
CADDY = os.environ.get("BURNLINK_TEST_CADDY", "/usr/bin/caddy")
COMPOSE = ROOT / "deploy" / "compose"
DOCUMENTED = set(
    re.findall(r"`(BURNLINK_[A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text())
)
SECRET_SETTINGS = {f"BURNLINK_{name.upper()}" for name in FILE_SETTINGS} | {
    "BURNLINK_OIDC_CLIENT_SECRET"
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return loaded


def test_two_replicas_behind_the_proxy_believe_only_the_proxy(compose: dict[str, Any]) -> None:
    burnlink, caddy = compose["services"]["burnlink"], compose["services"]["caddy"]
    env = burnlink["environment"]

    assert burnlink["deploy"]["replicas"] == 2
    assert "ports" not in burnlink  # reached only through the proxy
    assert env["BURNLINK_PROXY_HEADER"] == "x-forwarded-for"
    assert env["BURNLINK_TRUSTED_PROXIES"] == f"{caddy['networks']['edge']['ipv4_address']}/32"
    assert env["BURNLINK_BASE_URL"].startswith("https://")
    assert burnlink["read_only"] is True


def test_every_variable_is_a_documented_setting_and_secrets_come_from_files(
    compose: dict[str, Any],
) -> None:
    burnlink = compose["services"]["burnlink"]
    env: dict[str, str] = burnlink["environment"]
    declared = set(compose["secrets"])

    assert set(env) <= DOCUMENTED, set(env) - DOCUMENTED
    assert not set(env) & SECRET_SETTINGS  # never a key or password in the compose file
    for name, value in env.items():
        if name.endswith("_FILE"):
            secret = value.removeprefix("/run/secrets/")
            assert secret in burnlink["secrets"], name
            assert secret in declared, name
    # Every replica needs the same keys and the same store.
    assert {"BURNLINK_STORE_FILE", "BURNLINK_AUDIT_KEY_FILE", "BURNLINK_SIGNING_KEY_FILE"} <= set(
        env
    )


def test_the_database_is_on_an_internal_network_only(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]

    assert postgres["networks"] == ["data"]
    assert compose["networks"]["data"]["internal"] is True
    assert "ports" not in postgres


def test_make_secrets_writes_usable_private_files_once(tmp_path: Path) -> None:
    folder = tmp_path / "compose"
    folder.mkdir()
    shutil.copy(COMPOSE / "make-secrets", folder)
    script = [str(folder / "make-secrets")]

    subprocess.run(script, check=True, capture_output=True)  # noqa: S603 - the repo's script
    files = {path.name: path for path in (folder / "secrets").iterdir()}
    first = {name: path.read_text() for name, path in files.items()}
    subprocess.run(script, check=True, capture_output=True)  # noqa: S603 - the repo's script

    assert set(files) == {"store_url", "audit_key", "signing_key", "postgres_password"}
    assert {name: path.read_text() for name, path in files.items()} == first  # kept
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    password = first["postgres_password"].strip()
    assert first["store_url"].strip() == f"postgresql://burnlink:{password}@postgres:5432/burnlink"
    settings = load_settings(
        store=first["store_url"].strip(),
        audit_key=first["audit_key"].strip(),
        signing_key=first["signing_key"].strip(),
    )
    assert settings.audit_key is not None
    assert settings.signing_key is not None


def test_the_caddyfile_sends_https_for_the_domain_to_every_healthy_replica() -> None:
    if not os.access(CADDY, os.X_OK):
        message = f"caddy is not installed at {CADDY}: apt-get install caddy (scripts/test does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    adapted = subprocess.run(  # noqa: S603 - Debian's caddy on the repo's Caddyfile
        [CADDY, "adapt", "--config", str(COMPOSE / "Caddyfile")],
        env={**os.environ, "BURNLINK_DOMAIN": "secrets.example.com"},
        capture_output=True,
        text=True,
        check=True,
    )
    server = json.loads(adapted.stdout)["apps"]["http"]["servers"]["srv0"]
    route = server["routes"][0]
    proxy = route["handle"][0]["routes"][0]["handle"][0]

    assert server["listen"] == [":443"]  # https, with Caddy's automatic certificate
    assert route["match"] == [{"host": ["secrets.example.com"]}]
    assert proxy["handler"] == "reverse_proxy"
    # Every replica the compose network's DNS names, not the first one only.
    assert proxy["dynamic_upstreams"] == {
        "name": "burnlink",
        "port": "8000",
        "refresh": 5_000_000_000,
        "source": "a",
    }
    assert proxy["health_checks"]["active"]["uri"] == "/healthz"
    # No trusted_proxies: a client's own X-Forwarded-For is replaced, never passed on.
    assert "trusted_proxies" not in json.dumps(server)
