"""Structured logs: one JSON object per line on standard error, level from BURNLINK_LOG_LEVEL.

Each line has ``time`` (UTC, milliseconds), ``level``, ``logger`` and ``message``, plus the
fields a caller passed as ``extra={"fields": {...}}`` (the request log line adds ``method``,
``path``, ``status``, ``duration_ms``, ``request_id``, ``client_ip``, ``agent``). For an
exception only its type is written (``exc_type``), never its message or traceback, since
either could quote a secret.

Nothing here is wired in at import: ``configure_logging`` is called by the server's entry
point (``web.app.app_from_environment``), never by ``create_app``, so tests and embedders keep
their own logging.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from datetime import UTC, datetime
from typing import IO, Final

__all__ = ["QUIET_LIBRARIES", "JsonFormatter", "configure_logging", "quiet_libraries"]

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
        # Split as datetime.fromtimestamp splits it, so each line reads exactly as before.
        fraction_of_second, seconds = math.modf(record.created)
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
        line: dict[str, object] = {
            "time": f"{prefix}{fraction // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if k not in line})
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
        return _ENCODER.encode(line)


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
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
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
