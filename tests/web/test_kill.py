"""``kill -9`` of the server at any point loses no recorded event, on every persistent backend.

An action and its event are one store operation (``audit.outbox``), and the sealer moves
events into the audit log in batches. Here a server under a steady load of creates and
reveals is killed with SIGKILL, twice, at whatever point it has reached (answering, recording,
sealing), and started again on the same store and log. Then every create that was answered
201 has exactly one ``secret.created`` in the log, and every secret's ``secret.viewed``
events are exactly the views its receipt counts: no event lost, none doubled, none for a
view that did not happen.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import store_url
from tests.servers import running_server

pytestmark = pytest.mark.anyio

ADMIN = "kill-test-admin-token-" + os.urandom(8).hex()
ROUNDS = 2
WORKERS = 16
CREATES_BEFORE_KILL = 30
"""Creates answered in a round before its kill: the kill then lands in a steady load."""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def load(
    base: str, created: dict[str, str], viewed: set[str], target: int, going: anyio.Event
) -> None:
    """Create and reveal secrets from WORKERS clients until the server dies; set ``going``
    once ``target`` creates were answered."""

    async def worker() -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                try:
                    made = await http.post(f"{base}/api/v1/secrets", json={"secret": "k9"})
                    if made.status_code != 201:
                        continue
                    body = made.json()
                    created[body["id"]] = body["manage_url"].split("#")[1]
                    if len(created) >= target:
                        going.set()
                    key = body["url"].split("#")[1]
                    shown = await http.post(
                        f"{base}/api/v1/secrets/{body['id']}/reveal", json={"key": key}
                    )
                    if shown.status_code == 200:
                        viewed.add(body["id"])
                except httpx.HTTPError:
                    return  # the server is gone: what was answered so far is what counts

    async with anyio.create_task_group() as group:
        for _ in range(WORKERS):
            group.start_soon(worker)


async def audit_events(base: str) -> list[dict[str, Any]]:
    """Every event of the log, through the admin API (which seals what waits first)."""
    events: list[dict[str, Any]] = []
    after = 0
    async with httpx.AsyncClient(timeout=30) as http:
        while True:
            page = await http.get(
                f"{base}/api/v1/audit",
                params={"after": after, "limit": 1000},
                headers={"authorization": f"Bearer {ADMIN}"},
            )
            assert page.status_code == 200, page.text
            body = page.json()
            events += [entry["event"] for entry in body["entries"]]
            if body["next_after"] is None:
                return events
            after = body["next_after"]


async def views_used(base: str, secret_id: str, manage: str) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        receipt = await http.get(
            f"{base}/api/v1/secrets/{secret_id}/receipt",
            headers={"authorization": f"Bearer {manage}"},
        )
    assert receipt.status_code == 200, receipt.text
    used: int = receipt.json()["views_used"]
    return used


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
async def test_kill_9_at_any_point_loses_no_recorded_event(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(backend, request, tmp_path)
    env = {
        "BURNLINK_ADMIN_TOKEN": ADMIN,
        "BURNLINK_RATE_LIMIT_CREATE": "off",
        "BURNLINK_RATE_LIMIT_REVEAL": "off",
        "BURNLINK_RATE_LIMIT_FAILURES": "off",
        "BURNLINK_RATE_LIMIT_SECRET_FAILURES": "off",
    }
    if backend == "redis":  # Redis keeps no audit log: a SQLite file beside it, as documented
        env["BURNLINK_AUDIT_STORE"] = f"sqlite://{tmp_path / 'audit.db'}"
    created: dict[str, str] = {}
    viewed: set[str] = set()
    for round in range(ROUNDS):
        with running_server(url, tmp_path / f"server-{round}.log", env=env) as (base, process):
            going = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(
                    load, base, created, viewed, len(created) + CREATES_BEFORE_KILL, going
                )
                with anyio.move_on_after(30):  # a bound for a slow machine, not a timing test
                    await going.wait()
                os.kill(process.pid, signal.SIGKILL)
            process.wait()

    assert len(created) >= ROUNDS * CREATES_BEFORE_KILL, "the load did not get going"
    assert viewed
    with running_server(url, tmp_path / "after.log", env=env) as (base, _):
        events = await audit_events(base)
        creates = [e["secret_hash"] for e in events if e["type"] == "secret.created"]
        views = [e["secret_hash"] for e in events if e["type"] == "secret.viewed"]
        for secret_id, manage in created.items():
            assert creates.count(sha(secret_id)) == 1, secret_id
            used = await views_used(base, secret_id, manage)
            assert views.count(sha(secret_id)) == used, secret_id
        for secret_id in viewed:
            assert views.count(sha(secret_id)) == 1, secret_id
        assert len(creates) == len(set(creates))
