"""The curl convenience mode's cryptography, run on the server (docs/crypto.md).

The only place where the server holds a link key or a passphrase: during one call, in a
worker thread, bounded by ``BURNLINK_KDF_CONCURRENCY`` (a PBKDF2 run costs hundreds of ms).
"""

from __future__ import annotations

import anyio

from burnlink.crypto import LinkKeys, Payload, Sealed, derive_keys, open_envelope, seal
from burnlink.envelope import Envelope
from burnlink.errors import InvalidInput, PassphraseRequired
from burnlink.models import SecretMeta

__all__ = ["MAX_PASSPHRASE_CHARS", "check_passphrase", "keys_for", "open_stored", "seal_payload"]

MAX_PASSPHRASE_CHARS = 1024


def check_passphrase(passphrase: str | None) -> None:
    """``InvalidInput`` unless ``passphrase`` is ``None`` or 1 to 1024 characters."""
    if passphrase is not None and not 1 <= len(passphrase) <= MAX_PASSPHRASE_CHARS:
        raise InvalidInput("passphrase", f"must be 1 to {MAX_PASSPHRASE_CHARS} characters")


async def seal_payload(
    payload: Payload,
    link_key: bytes,
    passphrase: str | None,
    *,
    iterations: int,
    limiter: anyio.CapacityLimiter,
) -> Sealed:
    """``crypto.seal`` in a worker thread, within ``limiter``."""
    async with limiter:
        return await anyio.to_thread.run_sync(
            lambda: seal(payload, link_key, passphrase=passphrase, iterations=iterations)
        )


async def keys_for(
    meta: SecretMeta,
    link_key: bytes,
    passphrase: str | None,
    *,
    max_iterations: int,
    limiter: anyio.CapacityLimiter,
) -> LinkKeys:
    """The keys that open ``meta``'s secret: with its passphrase when it has one.

    Raises ``PassphraseRequired`` (not counted) without one, ``InvalidInput`` for a
    passphrase too long, or a secret whose KDF costs more than the server runs.
    """
    gate = meta.passphrase
    if gate is None:
        return derive_keys(link_key)
    if not passphrase:
        raise PassphraseRequired(meta.attempts_left)
    check_passphrase(passphrase)
    if gate.iterations > max_iterations:
        # Only end-to-end clients choose more; they derive on their own CPU.
        raise InvalidInput(
            "passphrase",
            "this secret's passphrase is too costly to check on the server; "
            "reveal it with an end-to-end client (burnlink get, or the web page)",
        )
    async with limiter:
        return await anyio.to_thread.run_sync(
            lambda: derive_keys(
                link_key, passphrase=passphrase, salt=gate.salt, iterations=gate.iterations
            )
        )


def open_stored(stored: bytes, keys: LinkKeys) -> Payload:
    """Decrypt a stored envelope. Raises ``EnvelopeError`` only for an envelope a broken
    end-to-end client stored."""
    return open_envelope(Envelope.from_bytes(stored), keys)
