"""Array parameters whose PostgreSQL type is declared, not guessed.

psycopg dumps a plain ``list`` by looking into it on every call: it collects the types of its
elements, finds the dumper of one of them, builds a new array dumper for that and, for
integers, picks the narrowest type that holds the largest. A create passes about a dozen
arrays (its rate counters, its receipt lines, its outbox records), and that guessing was
about a sixth of a PostgreSQL create's CPU in burnlink's process. A list of one of the
classes here is dumped in binary as a one-dimensional array of its declared type, each element
by psycopg's own dumper for that type, with nothing to guess and none of the general list
dumper's walk over nested dimensions; the statements cast every array parameter to that same
type anyway.

``register_arrays`` installs the dumpers on a connection (the store's pool does it on each
connection it opens).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Final

from psycopg import AsyncConnection
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Dumper
from psycopg.postgres import adapters, types
from psycopg.pq import Format

__all__ = [
    "BigintArray",
    "BooleanArray",
    "ByteaArray",
    "TextArray",
    "TimestamptzArray",
    "register_arrays",
]


class TextArray(list[str | None]):
    """A ``text[]`` parameter."""


class BigintArray(list[int]):
    """A ``bigint[]`` parameter."""


class TimestamptzArray(list[datetime]):
    """A ``timestamptz[]`` parameter (aware datetimes)."""


class BooleanArray(list[bool | None]):
    """A ``boolean[]`` parameter."""


class ByteaArray(list[bytes]):
    """A ``bytea[]`` parameter."""


_ELEMENTS: Final = {
    TextArray: "text",
    BigintArray: "int8",
    TimestamptzArray: "timestamptz",
    BooleanArray: "bool",
    ByteaArray: "bytea",
}


_HEAD: Final = struct.Struct(">iiiii")
"""A one-dimensional array's header: dimensions, has-nulls flag (PostgreSQL reads the
lengths), element type, length, lower bound."""
_EMPTY: Final = struct.Struct(">iii")
"""An empty array's header: no dimensions, no flag, element type."""
_LENGTH: Final = struct.Struct(">i")
_NULL: Final = _LENGTH.pack(-1)


class _FlatArrayDumper(Dumper):
    """Dump a list as a one-dimensional binary array of ``element_oid``, each element by
    psycopg's binary dumper for that type (``None``: NULL)."""

    format = Format.BINARY
    element_oid: ClassVar[int]
    empty: ClassVar[bytes]
    """The empty array of ``element_oid``."""

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        known = context.adapters if context is not None else adapters
        element = known.get_dumper_by_oid(self.element_oid, Format.BINARY)
        self._dump_element = element(object, context).dump

    def dump(self, obj: Sequence[Any]) -> Buffer:
        """The array in PostgreSQL's binary format."""
        if not obj:
            return self.empty
        parts: list[Buffer] = [_HEAD.pack(1, 0, self.element_oid, len(obj), 1)]
        for item in obj:
            data = None if item is None else self._dump_element(item)
            if data is None:
                parts.append(_NULL)
            else:
                parts.append(_LENGTH.pack(len(data)))
                parts.append(data)
        return b"".join(parts)


def _dumper(element: str) -> type[_FlatArrayDumper]:
    """The dumper of a ``element[]`` parameter: with ``oid`` set, psycopg neither inspects
    the list (``get_key``) nor makes a new dumper for it (``upgrade``)."""
    info = types[element]
    attributes = {
        "oid": info.array_oid,
        "element_oid": info.oid,
        "empty": _EMPTY.pack(0, 0, info.oid),
    }
    return type(f"{element.title()}ArrayDumper", (_FlatArrayDumper,), attributes)


_DUMPERS: Final = {cls: _dumper(element) for cls, element in _ELEMENTS.items()}


def register_arrays(conn: AsyncConnection[object]) -> None:
    """Dump this module's array classes on ``conn`` by their declared types."""
    for cls, dumper in _DUMPERS.items():
        conn.adapters.register_dumper(cls, dumper)
