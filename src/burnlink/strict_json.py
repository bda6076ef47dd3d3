"""JSON as burnlink reads and writes it: parsing that refuses an object naming the same
member twice, and the compact form stores keep.

Python's ``json`` keeps the last of duplicate names and other parsers keep the first, so a
document such as ``{"max_views": 1, "max_views": 50}`` can mean one thing to a proxy, a
client-side check or another tool, and another thing here. Request bodies (``web.json_body``)
and signed statements (``signing``) are parsed with ``loads_strict``. Envelopes, policies,
payload headers and receipt lines are written with ``dumps_compact``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import msgspec

__all__ = ["MAX_NAME_SHOWN", "DuplicateName", "dumps_compact", "loads_strict", "shorten"]

MAX_NAME_SHOWN = 64
"""Longest member name echoed in an error; a longer one is cut and ends with ``…``."""


def shorten(name: str, limit: int = MAX_NAME_SHOWN) -> str:
    """``name`` as an error may echo it: at most ``limit`` characters."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


class DuplicateName(json.JSONDecodeError):
    """A JSON object names the same member twice (``name`` is that member, shortened)."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = shorten(name)
        text = json.dumps(self.name, ensure_ascii=False)
        super().__init__(f"the name {text} appears twice in one object", doc, 0)


class _Repeated(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _Repeated(name)
        result[name] = value
    return result


# Made once: ``json.loads`` and ``json.dumps`` build a new decoder or encoder for every call
# that passes an option.
_STRICT_DECODER = json.JSONDecoder(object_pairs_hook=_unique)
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_COMPACT_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_FAST = msgspec.json.Encoder()
"""Writes the same compact JSON as ``_COMPACT_UTF8`` for ``_plain`` values, about ten times
faster (it writes a float ``1e16`` where ``json`` writes ``1e+16``, hence ``_plain``)."""


def loads_strict(data: str | bytes) -> Any:
    """Parse JSON like ``json.loads``, but raise ``DuplicateName`` (a ``JSONDecodeError``)
    for an object that names a member twice, at any depth."""
    try:
        if isinstance(data, bytes | bytearray):
            # What ``json.loads`` does with bytes: UTF-8, -16 or -32, found from the start.
            text = data.decode(json.detect_encoding(data), "surrogatepass")
        else:
            text = data
        return _STRICT_DECODER.decode(text)
    except _Repeated as exc:
        doc = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        raise DuplicateName(exc.name, doc) from None


def dumps_compact(value: object, *, ascii: bool = True) -> bytes:
    """``value`` as JSON with no whitespace, exactly as ``json.dumps(value,
    separators=(",", ":"), ensure_ascii=ascii)`` writes it, encoded as UTF-8.

    What burnlink stores (envelopes, policies, payload headers, receipt lines) is plain: no
    float, string keys only. msgspec writes it, and ``json`` only what msgspec cannot write
    exactly as it would (a float or a key not a string anywhere, another type, a string with
    a surrogate, or with ``ascii`` any character beyond ASCII or DEL)."""
    if _plain(value):
        try:
            data = _FAST.encode(value)
        except UnicodeEncodeError:  # a surrogate: json writes it (escaped, with ``ascii``)
            pass
        else:
            # With ``ascii``, json escapes DEL and every character beyond ASCII; msgspec not.
            if not ascii or (data.isascii() and b"\x7f" not in data):
                return data
    return (_COMPACT if ascii else _COMPACT_UTF8).encode(value).encode("utf-8")


def _plain(value: object) -> bool:
    """Whether ``value`` is made only of strings, integers, booleans, null, lists and dicts
    with string keys (exact types, no subclasses): what msgspec writes as ``json`` does."""
    kind = type(value)
    if kind is dict:
        for name, item in value.items():  # type: ignore[attr-defined]
            if type(name) is not str or (type(item) not in _SCALARS and not _plain(item)):
                return False
        return True
    if kind is list:
        return all(type(item) in _SCALARS or _plain(item) for item in value)  # type: ignore[attr-defined]
    return kind in _SCALARS


_SCALARS: Final = frozenset({str, int, bool, type(None)})
