"""The request log: one line per request on the ``burnlink.access`` logger, whoever answered
it: ``middleware.Edge`` for the requests the application saw, ``connections`` for those the
connection's limits answered first (408, 431, 503).

Each line's ``fields`` are ``method``, ``path`` (never the query string), ``status``,
``duration_ms``, ``request_id``, ``client_ip`` and ``agent``; a line written by a connection
limit also names it in ``limit`` (``ConnectionLimit``), and has no method, path or request id
when the request's head never arrived whole.
"""

from __future__ import annotations

import logging
from typing import Final

from burnlink.logs import write_line

__all__ = ["CONNECTION_LIMIT", "CONNECTION_STATUS", "access_log", "write"]

access_log = logging.getLogger("burnlink.access")

CONNECTION_STATUS: Final = "burnlink.connection_status"
"""Key in a request's ``scope["state"]``: the status a connection limit answered the request
with, instead of the application (whose answer then never reached the client)."""
CONNECTION_LIMIT: Final = "burnlink.connection_limit"
"""Key in a request's ``scope["state"]``: which limit that was (``ConnectionLimit``)."""


def write(
    *,
    method: str | None,
    path: str | None,
    status: int,
    seconds: float,
    request_id: str | None,
    client_ip: str | None,
    agent: str,
    limit: str | None = None,
) -> None:
    """Write one request's line: a warning for a 5xx, else info."""
    level = logging.WARNING if status >= 500 else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    fields: dict[str, object] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        "request_id": request_id,
        "client_ip": client_ip,
        "agent": agent,
    }
    if limit is not None:
        fields["limit"] = limit
    message = f"{method or '-'} {path or '-'} {status}"
    if write_line(access_log, level, message, fields):
        return  # the server's own handler alone would see it: written without a record
    # The record is made and handed on directly: ``Logger.log`` would also walk the stack
    # for the caller's file and line, which no formatter of ours prints (a few % of a
    # request's CPU). Handlers, filters and record factories still see it as usual.
    record = access_log.makeRecord(
        access_log.name,
        level,
        __file__,
        0,
        "%s %s %d",
        (method or "-", path or "-", status),
        None,
        extra={"fields": fields},
    )
    access_log.handle(record)
