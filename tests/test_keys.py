"""The server's keys: from settings, or generated once into BURNLINK_KEY_DIR with a warning."""

from __future__ import annotations

import base64
import logging
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burnlink import keys
from burnlink.config import load_settings
from burnlink.errors import ConfigError
from burnlink.ids import key_id


def test_audit_key_is_generated_once_private_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(store=f"sqlite://{tmp_path / 'b.db'}", key_dir=str(tmp_path / "k"))

    with caplog.at_level(logging.WARNING):
        first = keys.audit_key(settings)
    second = keys.audit_key(settings)

    path = tmp_path / "k" / keys.AUDIT_KEY_FILE
    assert first == second
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "BURNLINK_AUDIT_KEY is unset" in caplog.text
    assert str(path) in caplog.text
    assert first.hex() not in caplog.text


def test_audit_key_from_the_setting_and_never_created_when_reading(tmp_path: Path) -> None:
    given = load_settings(store="memory://", audit_key="ab" * 32)
    reading = load_settings(store=f"sqlite://{tmp_path / 'b.db'}", key_dir=str(tmp_path / "none"))

    assert keys.audit_key(given) == bytes([0xAB]) * 32
    with pytest.raises(ConfigError, match="no key file"):
        keys.audit_key(reading, create=False)
    assert not (tmp_path / "none").exists()


def test_memory_stores_get_keys_that_live_with_the_process(tmp_path: Path) -> None:
    settings = load_settings(store="memory://", key_dir=str(tmp_path / "k"))

    assert keys.audit_key(settings) != keys.audit_key(settings)
    assert isinstance(keys.signing_key(settings), Ed25519PrivateKey)
    assert not (tmp_path / "k").exists()


def test_signing_key_is_generated_once_as_pem(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(store=f"sqlite://{tmp_path / 'b.db'}", key_dir=str(tmp_path / "k"))

    with caplog.at_level(logging.WARNING):
        first = keys.signing_key(settings)
    second = keys.signing_key(settings)

    path = tmp_path / "k" / keys.SIGNING_KEY_FILE
    assert key_id(first.public_key()) == key_id(second.public_key())
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_id(first.public_key()) in caplog.text


def test_signing_key_setting_takes_pem_hex_or_base64() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    expected = key_id(key.public_key())

    for text in (
        pem,
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        parsed = keys.signing_key(load_settings(store="sqlite:///x.db", signing_key=text))
        assert key_id(parsed.public_key()) == expected


@pytest.mark.parametrize("text", ["", "abcd", "-----BEGIN PRIVATE KEY-----\nnope\n", "zz" * 32])
def test_bad_signing_keys_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="BURNLINK_SIGNING_KEY"):
        keys.parse_signing_key(text)
