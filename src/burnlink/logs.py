"""Structured logs: one JSON object per line on standard error, level from BURNLINK_LOG_LEVEL.

Each line has ``time`` (UTC, milliseconds), ``level``, ``logger`` and ``message``, plus the
fields a caller passed as ``extra={"fields": {...}}`` (the request log line adds ``method``,
``path``, ``status``, ``duration_ms``, ``request_id``, ``client_ip``, ``agent``). For an
exception only its type is written (``exc_type``), never its message or traceback, since
either could quote a secret. The request log's lines are written a turn of the event loop at
a time (``write_line``), each before any record that follows it.

Nothing is configured at import (only a last flush of buffered lines at exit):
``configure_logging`` is called by the server's entry point (``web.app.app_from_environment``),
never by ``create_app``, so tests and embedders keep their own logging.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import math
import sys
import time
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import IO, Final

__all__ = [
    "QUIET_LIBRARIES",
    "JsonFormatter",
    "configure_logging",
    "flush_lines",
    "quiet_libraries",
    "write_line",
]

QUIET_LIBRARIES: Final = ("httpx", "httpcore", "psycopg", "redis", "aiosmtplib")
"""Libraries that log request URLs (a webhook URL may hold a token) or SQL parameters: held
at warning whatever ``BURNLINK_LOG_LEVEL`` says."""

_HANDLER_NAME: Final = "burnlink-json"
_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


# One encoder for every line: ``json.dumps`` with options builds a new one per call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line (see the module docstring)."""

    # The formatted whole second of the last record: a server writes many lines a second,
    # and formatting a date is most of what a line's time costs.
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        """The record as compact JSON, on one line."""
        fields = getattr(record, "fields", None)
        exc_type = None
        if record.exc_info and record.exc_info[0] is not None:
            exc_type = record.exc_info[0].__name__
        return self.line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            fields if isinstance(fields, dict) else None,
            exc_type,
        )

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, object] | None = None,
        exc_type: str | None = None,
    ) -> str:
        """The line of a record made at ``created`` (``time.time()``) with these parts."""
        # Split as datetime.fromtimestamp splits it, so each line reads exactly as before.
        fraction_of_second, seconds = math.modf(created)
        whole, fraction = int(seconds), round(fraction_of_second * 1_000_000)
        if fraction >= 1_000_000:
            whole, fraction = whole + 1, fraction - 1_000_000
        elif fraction < 0:
            whole, fraction = whole - 1, fraction + 1_000_000
        second, prefix = self._second
        if whole != second:
            moment = datetime.fromtimestamp(whole, UTC)
            prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.")
            self._second = (whole, prefix)  # one assignment: safe to share between threads
        time_text = f"{prefix}{fraction // 1000:03d}Z"
        level = level.lower()
        text = _flat_line(time_text, level, logger, message, fields, exc_type)
        if text is not None:
            return text
        line: dict[str, object] = {
            "time": time_text,
            "level": level,
            "logger": logger,
            "message": message,
        }
        if fields is not None:
            line.update({k: v for k, v in fields.items() if k not in line})
        if exc_type is not None:
            line["exc_type"] = exc_type
        return _ENCODER.encode(line)


_OWN_MEMBERS: Final = frozenset({"time", "level", "logger", "message"})
"""The members every line has, which a field of the same name does not replace."""
_TEXT: Final = encode_basestring
"""A string as ``_ENCODER`` writes it (json's own escaping, in C; not ASCII-escaped)."""


def _flat_line(
    time_text: str,
    level: str,
    logger: str,
    message: str,
    fields: dict[str, object] | None,
    exc_type: str | None,
) -> str | None:
    """The line ``JsonFormatter.line`` writes, built member by member when every field is a
    string, an integer, a finite float, a boolean or null under a string name (the request
    log's always are): about a third of what ``_ENCODER`` takes for the same line, which it
    matches byte for byte (tests/test_logs.py). ``None`` for any other field."""
    parts = [
        f'{{"time": {_TEXT(time_text)}, "level": {_TEXT(level)}, "logger": {_TEXT(logger)}'
        f', "message": {_TEXT(message)}'
    ]
    if fields is not None:
        for name, value in fields.items():
            if type(name) is not str:
                return None
            if name in _OWN_MEMBERS:
                continue
            kind = type(value)
            if kind is str:
                parts.append(f", {_TEXT(name)}: {_TEXT(value)}")  # type: ignore[arg-type]
            elif value is None:
                parts.append(f", {_TEXT(name)}: null")
            elif kind is int:
                parts.append(f", {_TEXT(name)}: {int.__repr__(value)}")
            elif kind is float and math.isfinite(value):  # type: ignore[arg-type]
                parts.append(f", {_TEXT(name)}: {float.__repr__(value)}")
            elif kind is bool:
                parts.append(f", {_TEXT(name)}: {'true' if value else 'false'}")
            else:
                return None
    if exc_type is not None:
        parts.append(f', "exc_type": {_TEXT(exc_type)}')
    parts.append("}")
    return "".join(parts)


_Pending = tuple[float, str, str, str, dict[str, object]]
"""A line ``write_line`` took and has not written: the arguments of ``JsonFormatter.line``."""


class _Lines:
    """The handler ``configure_logging`` installed, and the lines ``write_line`` has not
    written yet."""

    handler: logging.StreamHandler[IO[str]] | None = None
    pending: list[_Pending] = []  # noqa: RUF012 - one buffer for the process, by design
    flushing: asyncio.AbstractEventLoop | None = None
    """The loop a flush is scheduled on, if any: one per turn of it."""


def flush_lines() -> None:
    """Format and write the lines ``write_line`` buffered, in one write. The JSON handler
    calls this before each record of its own, so lines and records keep their order."""
    _Lines.flushing = None
    pending, handler = _Lines.pending, _Lines.handler
    if not pending:
        return
    if handler is None:  # pragma: no cover - write_line buffers only with a handler
        pending.clear()
        return
    handler.acquire()
    try:
        # Taken by count, not cleared: a thread may append while this one joins.
        count = len(pending)
        taken = pending[:count]
        del pending[:count]
        line, end = _formatter_of(handler).line, handler.terminator
        text = "".join([line(*parts) + end for parts in taken])
        handler.stream.write(text)
        handler.flush()
    except Exception:  # noqa: BLE001 - reported as logging reports a failed write
        handler.handleError(logging.makeLogRecord({"msg": "request log lines"}))
    finally:
        handler.release()


atexit.register(flush_lines)


def _formatter_of(handler: logging.Handler) -> JsonFormatter:
    formatter = handler.formatter
    return formatter if isinstance(formatter, JsonFormatter) else JsonFormatter()


class _JsonLinesHandler(logging.StreamHandler[IO[str]]):
    """A stream handler that writes the buffered request log lines before its record."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the pending lines, then ``record``."""
        if _Lines.pending:
            flush_lines()
        super().emit(record)


def write_line(logger: logging.Logger, level: int, message: str, fields: dict[str, object]) -> bool:
    """Write what ``logger.log(level, message, extra={"fields": fields})`` would write, without
    making a ``LogRecord`` or walking the handlers, when ``configure_logging``'s handler is the
    only one that would see it; else write nothing and return ``False`` (the caller logs as
    usual, so that any handler, filter or record factory added since still sees the record).

    For the request log: one line per request, at about half the cost of a record. In an
    event loop the line is buffered and the lines of one turn of the loop written together
    (``flush_lines``), one write call instead of one per request; outside one it is written
    at once. The line is formatted when it is written: ``fields`` must not change after the
    call."""
    if not logger.isEnabledFor(level):
        return True  # as ``logger.log``: nothing to write
    handler = _Lines.handler
    root = logging.root
    if (
        handler is None
        or root.handlers != [handler]
        or root.filters
        or handler.filters
        or level < handler.level
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        return False
    node: logging.Logger | None = logger
    while node is not None and node is not root:
        if node.handlers or node.filters or not node.propagate or node.disabled:
            return False
        node = node.parent
    formatter = handler.formatter
    if not isinstance(formatter, JsonFormatter):
        return False
    # Formatted when written: the lines of a turn are formatted together, which costs a
    # request about half what formatting each amid the request's own work did.
    _Lines.pending.append((time.time(), logging.getLevelName(level), logger.name, message, fields))
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        flush_lines()  # no loop to flush at the end of its turn
        return True
    if _Lines.flushing is not loop:
        _Lines.flushing = loop
        loop.call_soon(flush_lines)
    return True


def quiet_libraries() -> None:
    """Hold ``QUIET_LIBRARIES`` at warning."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: str, *, stream: IO[str] | None = None) -> None:
    """Send every log record to ``stream`` (stderr) as JSON lines, at ``level`` and above.

    uvicorn's own loggers are routed here too, and its access log is switched off: the
    request log middleware writes one line per request instead. Calling it again replaces
    the handler rather than adding one.
    """
    flush_lines()  # the buffered lines belong to the handler being replaced
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = _JsonLinesHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    _Lines.handler = handler
    root.setLevel(_LEVELS.get(level, logging.ERROR))
    quiet_libraries()
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    # No line shows the thread, process or task a record came from: don't look them up for
    # every record (the logging module's documented switches; the request log writes one
    # record per request).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
