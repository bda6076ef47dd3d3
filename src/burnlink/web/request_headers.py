"""A request's header fields, read once: ``header(scope, name)``.

Starlette's ``Headers.get`` walks the request's list of fields on every call, and a missing
field costs it a ``KeyError``; a create or a reveal asks for about seven fields (the request
id, the body's length and type, the user agent twice, the language, the host). Here the
first call indexes the fields in the request's scope, and every later one is a lookup.
"""

from __future__ import annotations

from typing import Final

from starlette.types import Scope

__all__ = ["header"]

_INDEX: Final = "burnlink.headers"
"""Key in the request's ``scope``: its fields by lower-case name, the first of each name."""


def header(scope: Scope, name: bytes) -> str | None:
    """The value of the request's first field called ``name`` (lower-case, as ASGI servers
    give the names), decoded as Latin-1 as Starlette's ``Headers.get`` decodes it; ``None``
    when it has none."""
    index: dict[bytes, bytes] | None = scope.get(_INDEX)
    if index is None:
        index = {}
        for key, value in scope["headers"]:
            index.setdefault(key, value)
        scope[_INDEX] = index
    value = index.get(name)
    return None if value is None else value.decode("latin-1")
