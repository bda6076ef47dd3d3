"""JSON parsing that refuses an object naming the same member twice.

Python's ``json`` keeps the last of duplicate names and other parsers keep the first, so a
document such as ``{"max_views": 1, "max_views": 50}`` can mean one thing to a proxy, a
client-side check or another tool, and another thing here. Request bodies (``web.json_body``)
and signed statements (``signing``) are parsed with ``loads_strict``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_NAME_SHOWN", "DuplicateName", "loads_strict", "shorten"]

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


def loads_strict(data: str | bytes) -> Any:
    """Parse JSON like ``json.loads``, but raise ``DuplicateName`` (a ``JSONDecodeError``)
    for an object that names a member twice, at any depth."""
    try:
        return json.loads(data, object_pairs_hook=_unique)
    except _Repeated as exc:
        doc = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        raise DuplicateName(exc.name, doc) from None
