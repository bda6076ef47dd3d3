"""The server's own keys: the audit chain key and the proof-of-burn signing key.

Each comes from its setting (``BURNLINK_AUDIT_KEY``, ``BURNLINK_SIGNING_KEY``) or, when that
is unset, from a file in ``BURNLINK_KEY_DIR`` (``audit.key``, ``signing.key``), made with mode
0600 on first start with a warning in the log. With ``memory://`` (nothing is kept anyway)
an unset key is made fresh for the process and never written.

Commands that only read (``burnlink audit verify``/``export``) never create a key: a missing
one is a ``ConfigError``, since a new key could not verify an old log.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burnlink.audit.chain import KEY_BYTES, load_or_create_key, parse_key
from burnlink.config import Settings
from burnlink.errors import ConfigError
from burnlink.ids import key_id
from burnlink.signing import load_or_create_signing_key

__all__ = ["AUDIT_KEY_FILE", "SIGNING_KEY_FILE", "audit_key", "parse_signing_key", "signing_key"]

AUDIT_KEY_FILE: Final = "audit.key"
SIGNING_KEY_FILE: Final = "signing.key"

log = logging.getLogger("burnlink.keys")


def _is_memory(url: str) -> bool:
    return url.partition("://")[0].lower() == "memory"


def audit_key(settings: Settings, *, create: bool = True) -> bytes:
    """The audit chain key; see the module docstring. Raises ``ConfigError``."""
    if settings.audit_key is not None:
        return parse_key(settings.audit_key.get_secret_value())
    if _is_memory(settings.audit_url()):
        return secrets.token_bytes(KEY_BYTES)
    path = Path(settings.key_dir).expanduser() / AUDIT_KEY_FILE
    if not create and not path.exists():
        raise ConfigError(f"BURNLINK_AUDIT_KEY is unset and there is no key file at {path}")
    key, created = load_or_create_key(path)
    if created:
        log.warning(
            "BURNLINK_AUDIT_KEY is unset: generated an audit key in %s; keep it apart from the "
            "database and its backups, and back it up (a log cannot be verified without it)",
            path,
        )
    return key


def parse_signing_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 key from PEM (PKCS#8) text, or its 32 raw bytes in hex or base64."""
    value = text.strip()
    if value.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(value.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError):
            raise ConfigError("BURNLINK_SIGNING_KEY: not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError("BURNLINK_SIGNING_KEY: not an Ed25519 key")
        return key
    raw: bytes | None
    try:
        if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
            raw = bytes.fromhex(value)
        else:
            raw = base64.urlsafe_b64decode(
                value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4)
            )
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or len(raw) != 32:
        raise ConfigError(
            "BURNLINK_SIGNING_KEY: must be a PEM Ed25519 key or 32 bytes in hex or base64"
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The proof-of-burn key; see the module docstring. Raises ``ConfigError``."""
    if settings.signing_key is not None:
        return parse_signing_key(settings.signing_key.get_secret_value())
    if _is_memory(settings.store):
        return Ed25519PrivateKey.generate()
    path = Path(settings.key_dir).expanduser() / SIGNING_KEY_FILE
    key, created = load_or_create_signing_key(path)
    if created:
        log.warning(
            "BURNLINK_SIGNING_KEY is unset: generated a signing key in %s (kid %s); back it up, "
            "or statements it signed cannot be checked against a new key",
            path,
            key_id(key.public_key()),
        )
    return key
