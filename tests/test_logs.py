"""Structured logs: one JSON object per line, exceptions by type only, libraries kept quiet."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from burnlink.audit.events import Outcome
from burnlink.logs import QUIET_LIBRARIES, JsonFormatter, configure_logging, write_line


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put the global logging state back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = ["uvicorn", "uvicorn.error", "uvicorn.access", *QUIET_LIBRARIES]
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    access_disabled = logging.getLogger("uvicorn.access").disabled
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, (lvl, propagate) in saved.items():
            logging.getLogger(name).setLevel(lvl)
            logging.getLogger(name).propagate = propagate
        logging.getLogger("uvicorn.access").disabled = access_disabled


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("burnlink.test", logging.WARNING, __file__, 1, message, (), None)


def test_json_formatter_writes_one_line_with_time_level_and_fields() -> None:
    line = record("GET /x 200")
    line.fields = {"status": 200, "request_id": "abc", "message": "not this"}

    parsed = json.loads(JsonFormatter().format(line))

    assert parsed["message"] == "GET /x 200"
    assert (parsed["level"], parsed["logger"], parsed["status"]) == (
        "warning",
        "burnlink.test",
        200,
    )
    assert parsed["request_id"] == "abc"
    assert parsed["time"].endswith("Z")


def test_json_formatter_names_an_exception_by_type_only() -> None:
    try:
        raise ValueError("a-secret-in-the-message")
    except ValueError:
        import sys

        line = logging.LogRecord(
            "burnlink", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )

    text = JsonFormatter().format(line)

    assert json.loads(text)["exc_type"] == "ValueError"
    assert "a-secret-in-the-message" not in text
    assert "\n" not in text


@pytest.mark.usefixtures("restored_logging")
def test_configure_logging_sets_the_level_and_quiets_libraries() -> None:
    stream = io.StringIO()
    configure_logging("warning", stream=stream)
    configure_logging("warning", stream=stream)  # replaces, never doubles

    logging.getLogger("burnlink.x").info("dropped")
    logging.getLogger("burnlink.x").warning("kept")
    logging.getLogger("uvicorn.error").warning("routed")
    logging.getLogger("httpx").warning("quiet but warnings pass")
    logging.getLogger("uvicorn.access").warning("disabled")

    lines = [json.loads(x)["message"] for x in stream.getvalue().splitlines()]
    assert lines == ["kept", "routed", "quiet but warnings pass"]
    assert logging.getLogger("httpx").level == logging.WARNING


def messages(stream: io.StringIO) -> list[str]:
    return [json.loads(x)["message"] for x in stream.getvalue().splitlines()]


def json_logging_alone(stream: io.StringIO) -> None:
    """``configure_logging`` to ``stream``, its handler the root's only one, as in the server
    (pytest adds capturing handlers of its own), so that ``write_line`` writes directly."""
    configure_logging("info", stream=stream)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if getattr(h, "stream", None) is stream]


@pytest.mark.usefixtures("restored_logging")
def test_request_lines_keep_their_order_among_records_and_outlive_the_loop() -> None:
    """Lines written in a loop wait for the end of its turn, but a record written meanwhile
    comes after them, and the last turn's lines are written before the loop ends."""
    stream = io.StringIO()
    json_logging_alone(stream)
    access, web = logging.getLogger("burnlink.access"), logging.getLogger("burnlink.web")

    async def serve() -> None:
        assert write_line(access, logging.INFO, "first line", {})
        web.warning("a record")
        assert write_line(access, logging.INFO, "second line", {})
        assert messages(stream) == ["first line", "a record"]  # the second waits for the turn
        await asyncio.sleep(0)
        assert messages(stream) == ["first line", "a record", "second line"]
        assert write_line(access, logging.INFO, "last line", {})

    asyncio.run(serve())

    assert messages(stream) == ["first line", "a record", "second line", "last line"]


@pytest.mark.usefixtures("restored_logging")
def test_a_buffered_line_keeps_the_time_and_fields_it_was_written_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines are formatted when the turn's lines are written, but each says when its request
    ended and what it was, not when the batch went out."""
    stream = io.StringIO()
    json_logging_alone(stream)
    access = logging.getLogger("burnlink.access")

    async def serve() -> None:
        monkeypatch.setattr("burnlink.logs.time.time", lambda: 1_700_000_000.25)
        assert write_line(access, logging.INFO, "POST /api/v1/secrets 201", {"status": 201})
        monkeypatch.setattr("burnlink.logs.time.time", lambda: 1_700_000_007.5)
        await asyncio.sleep(0)

    asyncio.run(serve())

    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["time"], line["status"]) == ("2023-11-14T22:13:20.250Z", 201)


@pytest.mark.usefixtures("restored_logging")
def test_request_lines_go_to_the_stream_they_were_written_for() -> None:
    """``configure_logging`` writes the buffered lines before it replaces the handler; outside
    a loop a line is written at once."""
    first, second = io.StringIO(), io.StringIO()
    json_logging_alone(first)
    access = logging.getLogger("burnlink.access")

    async def serve() -> None:
        assert write_line(access, logging.INFO, "buffered", {})
        json_logging_alone(second)

    asyncio.run(serve())
    assert write_line(access, logging.INFO, "at once", {})

    assert (messages(first), messages(second)) == (["buffered"], ["at once"])


@pytest.mark.parametrize(
    "created",
    [
        pytest.param(1_700_000_000.0, id="whole-second"),
        pytest.param(1_700_000_000.9999996, id="rounds-up-to-next-second"),
        pytest.param(1_700_000_000.0004999, id="just-below-a-millisecond"),
        pytest.param(1_700_000_000.0015, id="half-microsecond"),
        pytest.param(1_700_000_001.123456, id="next-second-after-cached-one"),
    ],
)
def test_json_formatter_time_matches_datetime(created: float) -> None:
    """The cached whole second gives the time ``datetime.fromtimestamp`` would."""
    formatter = JsonFormatter()
    formatter.format(logging.LogRecord("x", logging.INFO, "", 0, "warm", (), None))
    record = logging.LogRecord("x", logging.INFO, "", 0, "m", (), None)
    record.created = created
    moment = datetime.fromtimestamp(created, UTC)
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert json.loads(formatter.format(record))["time"] == expected


_SCALAR = (
    st.text()
    | st.integers()
    | st.floats()
    | st.booleans()
    | st.none()
    | st.sampled_from([HTTPStatus.OK, Outcome.OK])  # an IntEnum, a str Enum
    | st.lists(st.integers(), max_size=2)
)


@example(message="m", logger="l", fields={"a": float("nan"), "b": -float("inf")}, exc_type=None)
@example(message="m", logger="l", fields={"ok": True, "status": HTTPStatus.OK}, exc_type="E")
@given(
    message=st.text(),
    logger=st.text(min_size=1),
    fields=st.dictionaries(st.text() | st.sampled_from(["time", "message"]), _SCALAR, max_size=6),
    exc_type=st.none() | st.text(),
)
def test_json_formatter_line_is_json_dumps_of_its_members(
    message: str, logger: str, fields: dict[str, object], exc_type: str | None
) -> None:
    """Whatever the fields, a line is exactly what ``json.dumps`` writes of its members (the
    request log's flat fields are written member by member, anything else by json)."""
    created = 1_700_000_000.25
    text = JsonFormatter().line(created, "INFO", logger, message, fields, exc_type)
    members: dict[str, object] = {
        "time": "2023-11-14T22:13:20.250Z",
        "level": "info",
        "logger": logger,
        "message": message,
    }
    members.update({k: v for k, v in fields.items() if k not in members})
    if exc_type is not None:
        members["exc_type"] = exc_type
    assert text == json.dumps(members, ensure_ascii=False, default=str)
