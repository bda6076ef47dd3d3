"""``burnlink share`` under team rules, against a real server on a socket: a refusal exits
with ``ACCESS_DENIED`` and prints the server's message and the teams behind it; and
``burnlink config check`` lists the teams with their rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from burnlink.cli.output import ExitCode
from burnlink.store.memory import MemoryStore
from tests.cli.harness import Cli, running_server, server_settings
from tests.cli.test_signin import put_token
from tests.web.signed_in import SIGN_IN

TEAMS = {"engineering": {"max_views": 2}, "sales": {"create": "nobody"}}


@dataclass(frozen=True)
class Server:
    cli: Cli
    alice: str
    mallory: str


@pytest.fixture
def team_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("BURNLINK_TOKEN", raising=False)
    store = MemoryStore(retention=timedelta(days=30))
    alice = put_token(store, ("secrets:create",))  # engineering
    mallory = put_token(store, ("secrets:create",), subject="mallory-sub", groups=("sales",))
    sign_in = {k: v for k, v in SIGN_IN.items() if k != "base_url"}
    with running_server(server_settings(**sign_in, teams=TEAMS), store=store) as url:
        yield Server(Cli(url), alice, mallory)


def test_share_beyond_a_team_rule_exits_access_denied_with_the_servers_message(
    team_server: Server,
) -> None:
    token = {"BURNLINK_TOKEN": team_server.alice}

    refused = team_server.cli("share", "--views", "3", input=b"s3cret", env=token)
    as_json = team_server.cli("share", "--views", "3", "--json", input=b"s3cret", env=token)
    link = team_server.cli.share(b"s3cret", "--views", "2", env=token)

    assert refused.exit_code == ExitCode.ACCESS_DENIED
    assert refused.stdout == ""
    assert refused.stderr.strip() == (
        "burnlink: Your teams allow at most 2 views. (set by your team: engineering)"
    )
    assert as_json.exit_code == ExitCode.ACCESS_DENIED
    error = json.loads(as_json.stderr)["error"]
    assert (error["code"], error["field"], error["teams"]) == (
        "team_policy",
        "max_views",
        ["engineering"],
    )
    assert "/s/" in link


def test_share_by_a_team_that_may_not_create_exits_access_denied(team_server: Server) -> None:
    refused = team_server.cli(
        "share", "--json", input=b"s3cret", env={"BURNLINK_TOKEN": team_server.mallory}
    )

    assert refused.exit_code == ExitCode.ACCESS_DENIED
    error = json.loads(refused.stderr)["error"]
    assert error["code"] == "create_not_allowed"
    assert "(sales)" in error["message"]


def test_config_check_lists_the_teams_and_their_rules(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "burnlink.toml"
    config.write_text(
        'organisation_domains = ["example.com"]\n'
        '[teams.engineering]\nmax_ttl = "7d"\nallowed_countries = ["de"]\n'
        '[teams."Site Reliability"]\nrecipients_inside = true\n',
        encoding="utf-8",
    )
    env = {
        "BURNLINK_CONFIG": str(config),
        "BURNLINK_OIDC_ISSUER": "https://login.example.com/realms/main",
        "BURNLINK_OIDC_CLIENT_ID": "burnlink",
        "BURNLINK_OIDC_CLIENT_SECRET": "very-secret-client-value",
    }

    text = cli("config", "check", env=env)
    as_json = cli("config", "check", "--json", env=env)

    assert text.exit_code == 0, text.stderr
    assert '[teams.engineering] max_ttl = 604800, allowed_countries = ["DE"]' in text.stdout
    assert '[teams."Site Reliability"] recipients_inside = true' in text.stdout
    assert as_json.exit_code == 0, as_json.stderr
    shown = json.loads(as_json.stdout)
    assert shown["teams"] == {
        "engineering": {"max_ttl": 604800, "allowed_countries": ["DE"]},
        "Site Reliability": {"recipients_inside": True},
    }
    assert shown["oidc_client_secret"] == "**********"
    assert "very-secret-client-value" not in text.stdout + as_json.stdout


def test_config_check_names_each_bad_team_key(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "burnlink.toml"
    config.write_text('[teams.sales]\nmax_views = "many"\n', encoding="utf-8")

    result = cli("config", "check", env={"BURNLINK_CONFIG": str(config)})

    assert result.exit_code == ExitCode.CONFIG
    assert "[teams.sales] max_views: must be an integer" in result.stderr
