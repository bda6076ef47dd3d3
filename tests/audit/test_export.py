"""Exports (JSON Lines, CSV) and the JSON Lines sink."""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from burnlink.audit import AuditStore, open_audit_store
from burnlink.audit.chain import Problem, verify
from burnlink.audit.events import AuditEventType, RequestInfo, audit_event
from burnlink.audit.export import (
    CSV_COLUMNS,
    JsonLinesSink,
    entry_to_dict,
    export_lines,
    read_jsonl,
)
from tests.audit.conftest import KEY, T0, make_event

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AuditStore]:
    opened = await open_audit_store(f"sqlite://{tmp_path / 'audit.db'}", key=KEY)
    try:
        for n in range(1, 6):
            kind = AuditEventType.SECRET_VIEWED if n % 2 else AuditEventType.PASSPHRASE_FAILED
            await opened.append(make_event(n, type=kind))
        yield opened
    finally:
        await opened.aclose()


async def _collect(lines: object) -> str:
    return "".join([line async for line in lines])  # type: ignore[attr-defined]


async def test_jsonl_export_verifies_offline(store: AuditStore) -> None:
    text = await _collect(export_lines(store, "jsonl"))

    lines = text.splitlines()
    assert len(lines) == 5
    assert json.loads(lines[0])["seq"] == 1
    assert verify(read_jsonl(lines), KEY).checked == 5


async def test_jsonl_export_that_was_edited_fails_verification(store: AuditStore) -> None:
    lines = (await _collect(export_lines(store, "jsonl"))).splitlines()
    lines[1] = lines[1].replace('"country":"DE"', '"country":"FR"')

    assert verify(read_jsonl(lines), KEY).problem is Problem.BAD_MAC


async def test_export_filters_by_time_and_type(store: AuditStore) -> None:
    text = await _collect(
        export_lines(
            store,
            "jsonl",
            since=T0 + timedelta(minutes=2),
            until=T0 + timedelta(minutes=5),
            types=[AuditEventType.SECRET_VIEWED],
        )
    )

    assert [e.seq for e in read_jsonl(text.splitlines())] == [3]


async def test_csv_export_has_the_documented_columns(store: AuditStore) -> None:
    text = await _collect(export_lines(store, "csv"))

    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 5
    assert rows[0]["seq"] == "1"
    assert rows[0]["at"] == "2030-01-01T00:01:00.000Z"
    assert rows[0]["detail"] == '{"n":1}'
    assert rows[1]["type"] == "passphrase.failed"
    assert rows[1]["outcome"] == "failed"
    assert text.endswith("\r\n")


async def test_csv_export_neutralises_spreadsheet_formulas(tmp_path: Path) -> None:
    store = await open_audit_store(f"sqlite://{tmp_path / 'a.db'}", key=KEY)
    try:
        await store.append(
            audit_event(
                AuditEventType.SECRET_OPENED,
                at=T0,
                request=RequestInfo(user_agent='=HYPERLINK("http://evil.example","x")'),
            )
        )
        rows = list(csv.DictReader(io.StringIO(await _collect(export_lines(store, "csv")))))
    finally:
        await store.aclose()

    assert rows[0]["user_agent"] == '\'=HYPERLINK("http://evil.example","x")'


def test_export_lines_refuses_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export_lines(None, "xml")  # type: ignore[arg-type]


def test_read_jsonl_names_the_bad_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        list(read_jsonl(["", '{"seq": 1}']))


@pytest.mark.parametrize(
    "change",
    [{"seq": 0}, {"seq": True}, {"mac": "zz"}, {"extra": 1}],
)
def test_read_jsonl_refuses_malformed_entries(change: dict[str, object]) -> None:
    from burnlink.audit.chain import GENESIS, next_entry

    line = {**entry_to_dict(next_entry(KEY, GENESIS, make_event(1))), **change}

    with pytest.raises(ValueError, match="line 1"):
        list(read_jsonl([json.dumps(line)]))


async def test_json_lines_sink_appends_verifiable_lines(store: AuditStore, tmp_path: Path) -> None:
    path = tmp_path / "siem.jsonl"
    sink = JsonLinesSink.open(str(path))
    for n in range(6, 9):
        assert sink.write(await store.append(make_event(n)))
    assert sink.write(make_event(9))  # a bare event, when the store failed
    sink.close()

    lines = path.read_text().splitlines()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(lines) == 4
    assert verify(read_jsonl(lines[:3]), KEY).checked == 3
    assert json.loads(lines[3])["event"]["detail"] == {"n": 9}


def test_json_lines_sink_counts_failed_writes() -> None:
    stream = io.StringIO()
    sink = JsonLinesSink(stream)
    stream.close()

    assert not sink.write(make_event(1))
    assert sink.failures == 1
    sink.close()


def test_json_lines_sink_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    sink = JsonLinesSink.open("-")
    sink.write(make_event(1))
    sink.close()

    assert json.loads(capsys.readouterr().out)["event"]["type"] == "secret.viewed"
