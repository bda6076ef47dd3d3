"""Work held back until the current request has been answered."""

from __future__ import annotations

import pytest

from burnlink.service.deferred import defer, deferring


def test_defer_starts_at_once_outside_a_request() -> None:
    started: list[str] = []

    defer(lambda: started.append("now"))

    assert started == ["now"]


def test_deferring_starts_held_work_in_order_on_leaving() -> None:
    started: list[str] = []

    with deferring():
        defer(lambda: started.append("first"))
        defer(lambda: started.append("second"))
        assert started == []

    assert started == ["first", "second"]
    defer(lambda: started.append("after"))
    assert started == ["first", "second", "after"]


def test_deferring_starts_held_work_when_the_request_fails() -> None:
    started: list[str] = []

    def handle() -> None:
        with deferring():
            defer(lambda: started.append("report"))
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        handle()

    assert started == ["report"]
