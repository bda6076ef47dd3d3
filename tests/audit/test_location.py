"""Where a server with ``BURNLINK_AUDIT_STORE`` unset keeps its audit log on SQLite: in a file
of its own beside the store's (``audit.location``), found there again by the operator's
``burnlink audit verify``. (A store file that already holds a log keeps it: test_config.py,
and tests/deploy/test_upgrade.py through a real upgrade.)"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx

from tests.servers import started

SEALED_WITHIN = 15.0
"""Seconds the server's sealer may take to move the events into the log."""


def _types(path: Path) -> list[str]:
    """The types of the entries in the audit log at ``path``, in chain order, read-only."""
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        return [str(row[0]) for row in db.execute("SELECT type FROM audit_log ORDER BY seq")]


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        return {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master")}


def test_a_sqlite_server_keeps_its_audit_log_in_a_file_of_its_own(tmp_path: Path) -> None:
    store, beside = tmp_path / "burnlink.db", tmp_path / "burnlink-audit.db"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BURNLINK_")},
        "BURNLINK_STORE": f"sqlite://{store}",
        "BURNLINK_KEY_DIR": str(tmp_path / "keys"),
    }

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "burnlink", "serve", "--port", str(port)]

    with started(command, environment, tmp_path / "burnlink.log") as (base, _):
        created = httpx.post(
            f"{base}/api/v1/secrets", json={"secret": "hunter2", "ttl": 3600}, timeout=30
        ).json()
        key = created["url"].split("#", 1)[1]
        revealed = httpx.post(
            f"{base}/api/v1/secrets/{created['id']}/reveal", json={"key": key}, timeout=30
        )
        assert revealed.json()["secret"] == "hunter2"
        deadline = time.monotonic() + SEALED_WITHIN
        while "secret.viewed" not in (types := _types(beside)) and time.monotonic() < deadline:
            time.sleep(0.1)

    assert "secret.created" in types
    assert "secret.viewed" in types
    assert "audit_state" not in _tables(store)
    assert "secrets" in _tables(store)
    verified = subprocess.run(
        [sys.executable, "-m", "burnlink", "audit", "verify"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK: "), verified.stdout
    assert int(verified.stdout.split()[1]) >= len(types)
