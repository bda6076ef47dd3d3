"""Getting audit entries out: streamed JSON Lines or CSV exports, and a live JSON Lines sink.

JSON Lines (``jsonl``)
    One entry per line: ``{"event":{…},"mac":"<hex>","prev_mac":"<hex>","seq":N}`` in canonical
    JSON. It carries everything ``chain.verify`` needs, so an export (or a slice of it) can be
    verified offline with the key: ``verify(read_jsonl(open(path)), key)``.

CSV (``csv``)
    A header row, then one row per entry with the columns of ``CSV_COLUMNS``; ``policy`` and
    ``detail`` hold canonical JSON. Cells that a spreadsheet would run as a formula (starting
    with ``=``, ``+``, ``-``, ``@``, tab or carriage return) get a leading ``'``: user agents
    are chosen by whoever sent the request. CSV is for reading; JSON Lines is for verifying.

Both are generators: nothing is held in memory beyond one page of the store.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, Literal

from burnlink.audit.backend import AuditStore
from burnlink.audit.chain import AuditEntry
from burnlink.audit.events import AuditEvent, AuditEventType, canonical_json, format_time
from burnlink.errors import AuditStateInvalid

__all__ = [
    "CSV_COLUMNS",
    "ExportFormat",
    "JsonLinesSink",
    "csv_lines",
    "entry_from_dict",
    "entry_to_dict",
    "export_lines",
    "jsonl_lines",
    "read_jsonl",
]

ExportFormat = Literal["jsonl", "csv"]

CSV_COLUMNS: Final = (
    "seq",
    "at",
    "type",
    "outcome",
    "secret_hash",
    "client_ip",
    "country",
    "user_agent",
    "agent_class",
    "request_id",
    "policy",
    "detail",
    "prev_mac",
    "mac",
    "actor_subject",
    "actor_email",
)
"""The CSV header, in order. Changing it is a breaking change: document it in docs/audit.md.
(The actor's columns came last, so readers of the earlier columns by position are unchanged.)"""

MEDIA_TYPES: Final[Mapping[str, str]] = {
    "jsonl": "application/jsonl",
    "csv": "text/csv; charset=utf-8",
}

LOG = logging.getLogger(__name__)

_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def entry_to_dict(entry: AuditEntry) -> dict[str, Any]:
    """The JSON Lines object of ``entry``."""
    return {
        "seq": entry.seq,
        "prev_mac": entry.prev_mac.hex(),
        "mac": entry.mac.hex(),
        "event": entry.event.to_dict(),
    }


def entry_from_dict(data: Mapping[str, Any]) -> AuditEntry:
    """Rebuild an entry from ``entry_to_dict`` output; raise ``ValueError`` if malformed."""
    if not isinstance(data, Mapping) or set(data) != {"seq", "prev_mac", "mac", "event"}:
        raise ValueError("not an audit entry")
    seq = data["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("seq must be a positive integer")
    return AuditEntry(
        seq=seq,
        event=AuditEvent.from_dict(data["event"]),
        prev_mac=bytes.fromhex(str(data["prev_mac"])),
        mac=bytes.fromhex(str(data["mac"])),
    )


def _line(entry: AuditEntry) -> str:
    return canonical_json(entry_to_dict(entry)).decode("utf-8") + "\n"


async def jsonl_lines(entries: AsyncIterable[AuditEntry]) -> AsyncIterator[str]:
    """One canonical JSON line (with ``\\n``) per entry."""
    async for entry in entries:
        yield _line(entry)


def read_jsonl(lines: Iterable[str | bytes]) -> Iterator[AuditEntry]:
    """Entries from JSON Lines (blank lines and the sink's checkpoint lines skipped);
    ``ValueError`` names the bad line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if isinstance(data, dict) and set(data) == {"checkpoint"}:
                continue
            yield entry_from_dict(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"line {number}: {exc}") from None


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_row(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


async def csv_lines(entries: AsyncIterable[AuditEntry]) -> AsyncIterator[str]:
    """The header row, then one row per entry (RFC 4180, CRLF line ends)."""
    yield _csv_row(CSV_COLUMNS)
    async for entry in entries:
        event = entry.event
        yield _csv_row(
            (
                entry.seq,
                format_time(event.at),
                event.type.value,
                event.outcome.value,
                event.secret_hash,
                event.client_ip,
                event.country,
                event.user_agent,
                event.agent_class,
                event.request_id,
                canonical_json(dict(event.policy)).decode("utf-8"),
                canonical_json(dict(event.detail)).decode("utf-8"),
                entry.prev_mac.hex(),
                entry.mac.hex(),
                event.actor_subject,
                event.actor_email,
            )
        )


def export_lines(
    store: AuditStore,
    format: ExportFormat,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    types: Sequence[AuditEventType] | None = None,
) -> AsyncIterator[str]:
    """Stream ``store``'s entries in ``format``, filtered by time (``since`` ≤ at < ``until``)
    and type: only those inside the chain its authentic state row records. Raise
    ``ValueError`` for an unknown format, ``AuditStateInvalid`` (when iterated) for a state
    row that does not verify."""
    if format not in MEDIA_TYPES:
        raise ValueError(f"unknown export format {format!r}; use jsonl or csv")
    entries = _chain_entries(store, since=since, until=until, types=types)
    return jsonl_lines(entries) if format == "jsonl" else csv_lines(entries)


async def _chain_entries(
    store: AuditStore,
    *,
    since: datetime | None,
    until: datetime | None,
    types: Sequence[AuditEventType] | None,
) -> AsyncIterator[AuditEntry]:
    """The entries the authentic state row vouches for (base < seq <= head), filtered.

    A row forged past the head is not part of the log, so it is not exported; a state row
    that fails its MAC stops the export (``AuditStateInvalid``) before the first line.
    """
    state = (await store.bounds()).state
    if state is None or not store.is_authentic(state):
        raise AuditStateInvalid(
            "The audit log's state row is missing or does not verify; run `burnlink audit verify`."
        )
    async for entry in store.iter_entries(
        since=since,
        until=until,
        types=types,
        after_seq=state.base.seq,
        through_seq=state.head.seq,
    ):
        yield entry


class JsonLinesSink:
    """Writes each appended entry as one JSON line to a stream, for shipping to a SIEM.

    The lines are those of the JSON Lines export, so a collector can verify them too. A
    failed write is logged (without content) and counted, never raised: shipping must not
    break the request that caused the event.
    """

    def __init__(self, stream: IO[str], *, close: bool = False) -> None:
        """Write to ``stream``; ``close`` says whether ``close()`` closes it."""
        self._stream = stream
        self._close = close
        self._lock = threading.Lock()
        self.failures = 0

    @classmethod
    def open(cls, target: str) -> JsonLinesSink:
        """``-`` for standard output, else a file path opened for appending (created 0600).

        Raises ``OSError`` when the file cannot be opened.
        """
        if target == "-":
            return cls(sys.stdout)
        path = Path(target).expanduser()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return cls(open(fd, "a", encoding="utf-8"), close=True)

    def write(self, item: AuditEntry | AuditEvent) -> bool:
        """Write one entry (or a bare event, when the audit store failed); ``False`` on error."""
        line = (
            _line(item)
            if isinstance(item, AuditEntry)
            else canonical_json({"event": item.to_dict()}).decode("utf-8") + "\n"
        )
        return self._write_line(line)

    def write_checkpoint(self, document: str) -> bool:
        """Write a signed checkpoint (``audit.checkpoint``) as ``{"checkpoint": {…}}``;
        ``False`` on error."""
        return self._write_line('{"checkpoint":' + document + "}\n")

    def _write_line(self, line: str) -> bool:
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError) as exc:
                self.failures += 1
                LOG.warning("audit sink write failed: %s", type(exc).__name__)
                return False
        return True

    def close(self) -> None:
        """Flush, and close the stream if this sink opened it."""
        with self._lock:
            with suppress(OSError, ValueError):
                self._stream.flush()
            if self._close:
                self._stream.close()
