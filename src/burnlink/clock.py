"""Where burnlink gets the time: injected, so tests can freeze it and stores never read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


def to_millis(moment: datetime) -> datetime:
    """``moment`` truncated to whole milliseconds, the precision every store keeps."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


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
