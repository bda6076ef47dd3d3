"""The text form of personal API tokens: ``blk_`` + 43 random base62 characters + a checksum.

A token reads ``blk_<random><check>``: 43 characters of base62 drawn uniformly from the
operating system's CSPRNG (62**43 > 2**256), then the CRC32 of those 43 ASCII characters
written as 6 base62 digits, most significant first. The fixed prefix and the checksum let a
secret scanner recognise a leaked token without asking the server (``PATTERN``), and let the
server refuse a mistyped or made-up one before any store call (``parse_token``).

Only ``ids.token_digest`` of the whole text is kept (``store.identity.TokenRecord``).
"""

from __future__ import annotations

import re
import secrets
import zlib
from typing import Final

__all__ = [
    "ALPHABET",
    "PATTERN",
    "PREFIX",
    "TOKEN_CHARS",
    "checksum",
    "is_api_token",
    "is_token_id",
    "new_api_token",
    "new_token_id",
    "parse_token",
]

PREFIX: Final = "blk_"
ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_CHARS: Final = 43
"""43 base62 characters: log2(62**43) is about 256.03 bits."""
CHECK_CHARS: Final = 6
"""CRC32 in base62: 62**6 (about 5.7e10) holds every 32-bit value."""
TOKEN_CHARS: Final = len(PREFIX) + RANDOM_CHARS + CHECK_CHARS
PATTERN: Final = r"\bblk_[0-9A-Za-z]{49}\b"
"""What a secret scanner looks for (docs/identity.md); the checksum then confirms a match."""
TOKEN_ID_CHARS: Final = 16
"""A token's public id: ``tok_`` + 16 base62 characters (about 95 bits, unique in practice)."""

_TOKEN_RE: Final = re.compile(r"blk_[0-9A-Za-z]{49}")
_TOKEN_ID_RE: Final = re.compile(r"tok_[0-9A-Za-z]{16}")


def _base62(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def checksum(random_part: str) -> str:
    """The 6 base62 digits of the CRC32 of ``random_part`` (its ASCII bytes)."""
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECK_CHARS)


def new_api_token() -> str:
    """A fresh token: ``blk_`` + 43 uniformly random base62 characters + their checksum."""
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
    return PREFIX + random_part + checksum(random_part)


def new_token_id() -> str:
    """A fresh public token id (``tok_...``): shown in lists and used to revoke; proves nothing."""
    return "tok_" + "".join(secrets.choice(ALPHABET) for _ in range(TOKEN_ID_CHARS))


def is_token_id(value: str) -> bool:
    """Whether ``value`` has the shape of a token id (anything else cannot exist)."""
    return _TOKEN_ID_RE.fullmatch(value) is not None


def is_api_token(text: str) -> bool:
    """Whether a bearer credential is meant as an API token (it starts with ``blk_``), as
    opposed to a secret's access or manage token. Says nothing about its validity."""
    return text.startswith(PREFIX)


def parse_token(text: str) -> bytes | None:
    """The token's bytes for ``ids.token_digest`` when ``text`` is well formed with a right
    checksum; else ``None`` (so a typo or a guess costs no store call)."""
    if len(text) != TOKEN_CHARS or _TOKEN_RE.fullmatch(text) is None:
        return None
    random_part = text[len(PREFIX) : len(PREFIX) + RANDOM_CHARS]
    if not secrets.compare_digest(checksum(random_part), text[-CHECK_CHARS:]):
        return None
    return text.encode("ascii")
