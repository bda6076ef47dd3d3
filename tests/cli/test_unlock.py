"""``burnlink unlock``: an operator lifts a client's failure locks on the server's store."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from burnlink.config import load_settings
from burnlink.ids import new_secret_id
from tests.cli.harness import Cli, running_server

WRONG_KEY = "A" * 43


def test_unlock_lifts_the_client_lock_then_the_lock_on_one_secret(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path / 'burnlink.db'}"
    # The operator's command reads the server's settings, as the server does. Week-long
    # windows: the test cannot straddle one (they start at multiples of 7 days).
    env = {
        "BURNLINK_STORE": store,
        "BURNLINK_RATE_LIMIT_FAILURES": "5/7 days",
        "BURNLINK_RATE_LIMIT_SECRET_FAILURES": "2/7 days",
    }
    settings = load_settings(
        store=store, rate_limit_failures="5/7 days", rate_limit_secret_failures="2/7 days"
    )
    with running_server(settings) as base, httpx.Client(base_url=base) as http:
        created = http.post("/api/v1/secrets", json={"secret": "s3cret", "max_views": 2}).json()
        secret_id, key = created["id"], created["url"].split("#")[1]

        def reveal(which: str, with_key: str) -> int:
            url = f"/api/v1/secrets/{which}/reveal"
            return http.post(url, json={"key": with_key}).status_code

        failures = [reveal(secret_id, WRONG_KEY) for _ in range(2)]
        failures += [reveal(new_secret_id(), WRONG_KEY) for _ in range(3)]
        locked = http.post(f"/api/v1/secrets/{secret_id}/reveal", json={"key": key})
        other = http.post("/api/v1/secrets", json={"secret": "other"}).json()
        other_locked = reveal(other["id"], other["url"].split("#")[1])

        cli = Cli(base)
        unlocked = cli("unlock", "127.0.0.1", "--json", env=env)
        other_revealed = reveal(other["id"], other["url"].split("#")[1])
        still_locked = reveal(secret_id, key)
        unlocked_secret = cli("unlock", "127.0.0.1", "--secret", secret_id, env=env)
        revealed = http.post(f"/api/v1/secrets/{secret_id}/reveal", json={"key": key})

    assert failures == [404] * 5
    assert (locked.status_code, other_locked) == (429, 429)
    assert "from your network" in locked.json()["error"]["message"]
    assert unlocked.exit_code == 0, unlocked.stderr
    assert json.loads(unlocked.stdout) == {"client": "127.0.0.1", "cleared": 5}
    assert (other_revealed, still_locked) == (200, 429)
    assert unlocked_secret.exit_code == 0, unlocked_secret.stderr
    assert unlocked_secret.stdout == "Cleared 2 counted failures of 127.0.0.1.\n"
    assert revealed.json()["secret"] == "s3cret"


def test_unlock_refuses_what_is_not_an_address_or_an_id(tmp_path: Path) -> None:
    cli = Cli("http://127.0.0.1:9")
    store = f"sqlite://{tmp_path / 'burnlink.db'}"

    not_an_address = cli("unlock", "example.com", "--store", store)
    not_an_id = cli("unlock", "192.0.2.1", "--secret", "../etc", "--store", store)

    assert (not_an_address.exit_code, not_an_id.exit_code) == (6, 6)
    assert "ADDRESS" in not_an_address.stderr
    assert "--secret" in not_an_id.stderr
    assert not (tmp_path / "burnlink.db").exists()
