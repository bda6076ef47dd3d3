"""The curl convenience mode's cryptography, run on the server (docs/crypto.md).

The only place where the server holds a link key or a passphrase: during one call. A
passphrase's PBKDF2 run costs hundreds of ms, so it goes to a worker thread, bounded by
``BURNLINK_KDF_CONCURRENCY``. Without a passphrase, sealing a small payload (``INLINE_BYTES``)
is a few HKDF and AES-GCM calls, cheaper than the hand-over to a thread, so it runs inline.
"""

from __future__ import annotations

import anyio

from burnlink.crypto import LinkKeys, Payload, Sealed, derive_keys, open_envelope, seal
from burnlink.envelope import Envelope
from burnlink.errors import InvalidInput, PassphraseRequired
from burnlink.models import SecretMeta

__all__ = ["MAX_PASSPHRASE_CHARS", "check_passphrase", "keys_for", "open_stored", "seal_payload"]

MAX_PASSPHRASE_CHARS = 1024
INLINE_BYTES = 64 * 1024
"""Payloads up to this size are sealed without a passphrase on the event loop (microseconds)."""


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
    """``crypto.seal``: inline for a small payload without a passphrase, else in a worker
    thread within ``limiter``."""
    if passphrase is None and len(payload.content) <= INLINE_BYTES:
        return seal(payload, link_key, passphrase=None, iterations=iterations)
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
    access: bytes | None = None,
) -> LinkKeys:
    """The keys that open ``meta``'s secret: with its passphrase when it has one
    (``access``: the link's access token, if already derived).

    Raises ``PassphraseRequired`` (not counted) without one, ``InvalidInput`` for a
    passphrase too long, or a secret whose KDF costs more than the server runs.
    """
    gate = meta.passphrase
    if gate is None:
        return derive_keys(link_key, access=access)
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
                link_key,
                passphrase=passphrase,
                salt=gate.salt,
                iterations=gate.iterations,
                access=access,
            )
        )


def open_stored(stored: bytes, keys: LinkKeys) -> Payload:
    """Decrypt a stored envelope. Raises ``EnvelopeError`` only for an envelope a broken
    end-to-end client stored."""
    return open_envelope(Envelope.from_bytes(stored), keys)
