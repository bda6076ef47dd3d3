"""Work held back until the current request has been answered.

Background work started while a request is still being handled runs at the handler's next
``await``, before the answer goes out, so its cost lands in the answer's time. When only some
requests start it (a wrong link for a live id reports ``key.failed``, an unknown id reports
almost nothing), that difference tells a scanner which ids are live. ``defer`` holds such work
until the web edge (``web.middleware.Edge``) has sent the whole answer; outside a request (the
sweeper, the CLI, tests of the service) it starts at once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType

__all__ = ["defer", "deferring"]

Start = Callable[[], None]

_pending: ContextVar[list[Start] | None] = ContextVar("burnlink_deferred", default=None)


def defer(start: Start) -> None:
    """Call ``start`` (which should only schedule work, never wait) once the current request
    has been answered; at once when no request is being answered."""
    pending = _pending.get()
    if pending is None:
        start()
    else:
        pending.append(start)


def deferring() -> Deferring:
    """Hold back what ``defer`` is given inside the block; call it, in order, on leaving."""
    return Deferring()


class Deferring:
    """``deferring``'s context manager: a class, not a ``contextmanager`` generator, as it
    wraps every request (a generator-based one costs a generator and its frame each time)."""

    __slots__ = ("_pending", "_token")

    def __enter__(self) -> None:
        self._pending: list[Start] = []
        self._token: Token[list[Start] | None] = _pending.set(self._pending)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _pending.reset(self._token)
        for start in self._pending:
            start()
