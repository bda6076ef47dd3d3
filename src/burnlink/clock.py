"""Where burnlink gets the time: injected, so tests can freeze it and stores never read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

MILLISECOND: Final = timedelta(milliseconds=1)
"""The unit stores keep times and durations in (``retention // MILLISECOND``)."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_millis(moment: datetime) -> datetime:
    """``moment`` truncated to whole milliseconds, the precision every store keeps."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def to_epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch of an aware datetime (floored, exactly, without float
    rounding): how the SQLite and Redis stores and the SQLite audit log keep a time."""
    return (moment - _EPOCH) // MILLISECOND


def from_epoch_ms(millis: int) -> datetime:
    """The aware UTC datetime ``millis`` milliseconds after the epoch; ``to_epoch_ms`` undone."""
    return _EPOCH + timedelta(milliseconds=millis)


class Clock(Protocol):
    """A source of the current time as an aware UTC datetime with millisecond precision."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current UTC time, truncated to milliseconds."""
        return to_millis(datetime.now(UTC))


class FrozenClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = to_millis(start or datetime(2030, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        """The frozen time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now = to_millis(self._now + timedelta(seconds=seconds))
