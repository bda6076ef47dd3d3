"""``Redacted``: the base of the frozen records built on every request whose repr must not
show what they carry (keys, digests, ciphertext, content, webhook URLs).

They are msgspec ``Struct`` s rather than frozen dataclasses: a ``Struct`` is built in C, in
about a tenth of the time a frozen dataclass's ``__init__`` takes (one ``object.__setattr__``
per field), and a request builds dozens. Change one with ``msgspec.structs.replace``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

__all__ = ["Redacted"]


class Redacted(msgspec.Struct, frozen=True):
    """A frozen record whose repr, and the one rich prints, leave out the fields its
    ``_HIDDEN`` names (msgspec's own would show every field)."""

    _HIDDEN: ClassVar[tuple[str, ...]] = ()

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """The fields rich shows: all but the hidden ones."""
        hidden = self._HIDDEN
        return [(n, getattr(self, n)) for n in self.__struct_fields__ if n not in hidden]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"{type(self).__name__}({shown})"
