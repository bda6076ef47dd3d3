"""Array parameters whose PostgreSQL type is declared, not guessed.

psycopg dumps a plain ``list`` by looking into it on every call: it collects the types of its
elements, finds the dumper of one of them, builds a new array dumper for that and, for
integers, picks the narrowest type that holds the largest. A create passes about a dozen
arrays (its rate counters, its receipt lines, its outbox records), and that guessing was
about a sixth of a PostgreSQL create's CPU in burnlink's process. A list of one of the
classes here is dumped by a dumper made once per connection for its declared type (binary,
element by element), with nothing to guess; the statements cast every array parameter to
that same type anyway.

``register_arrays`` installs the dumpers on a connection (the store's pool does it on each
connection it opens).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from psycopg import AsyncConnection
from psycopg.postgres import types
from psycopg.types.array import ListBinaryDumper

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


def _dumper(element: str) -> type[ListBinaryDumper]:
    """A binary array dumper whose array and element types are fixed: with ``oid`` set,
    psycopg neither inspects the list (``get_key``) nor makes a new dumper for it
    (``upgrade``)."""
    info = types[element]
    attributes = {"oid": info.array_oid, "element_oid": info.oid}
    return type(f"{element.title()}ArrayDumper", (ListBinaryDumper,), attributes)


_DUMPERS: Final = {cls: _dumper(element) for cls, element in _ELEMENTS.items()}


def register_arrays(conn: AsyncConnection[object]) -> None:
    """Dump this module's array classes on ``conn`` by their declared types."""
    for cls, dumper in _DUMPERS.items():
        conn.adapters.register_dumper(cls, dumper)
