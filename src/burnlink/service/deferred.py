"""Work held back until the current request has been answered.

Background work started while a request is still being handled runs at the handler's next
``await``, before the answer goes out, so its cost lands in the answer's time. When only some
requests start it (a wrong link for a live id reports ``key.failed``, an unknown id reports
almost nothing), that difference tells a scanner which ids are live. ``defer`` holds such work
until the web edge (``web.middleware.Edge``) has sent the whole answer; outside a request (the
sweeper, the CLI, tests of the service) it starts at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

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


@contextmanager
def deferring() -> Iterator[None]:
    """Hold back what ``defer`` is given inside the block; call it, in order, on leaving."""
    pending: list[Start] = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
        for start in pending:
            start()
