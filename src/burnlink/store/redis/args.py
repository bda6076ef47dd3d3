"""Script arguments the Redis store's modules share: the events kept with a change, as the
scripts' ``keep`` reads them."""

from __future__ import annotations

from collections.abc import Sequence

from burnlink.clock import to_epoch_ms
from burnlink.models import Event
from burnlink.store.secrets import Recorded
from burnlink.strict_json import dumps_compact

__all__ = ["encode_event", "event_args"]


def event_args(events: Sequence[Recorded], *, lines: bool = True) -> list[bytes | str | int]:
    """``events`` as the scripts' ``keep`` reads them: their count, then each one's receipt
    line (``b""`` for none, or for all when not ``lines``), kind and outbox record."""
    args: list[bytes | str | int] = [len(events)]
    for recorded in events:
        line = recorded.line
        if line is None or not lines:
            args += [b"", b"", recorded.outbox]
        else:
            args += [encode_event(line), line.kind.value, recorded.outbox]
    return args


def encode_event(event: Event) -> bytes:
    """The line as the scripts take it: its row for ``e:``, then its viewer, if any, after a
    newline (``keep_items`` puts that in the receipt hash as ``v:<n>``). The row stays the
    four members a release before viewers unpacks."""
    # ensure_ascii keeps any str, even one with lone surrogates, encodable and exact; compact
    # JSON never holds a raw newline, so the first one is the cut.
    row = dumps_compact([to_epoch_ms(event.at), event.kind.value, event.ip, event.user_agent])
    viewer = event.viewer
    if viewer is None:
        return row
    return row + b"\n" + dumps_compact({"email": viewer.email, "mfa": viewer.mfa})
