"""``[teams.NAME]`` tables and ``BURNLINK_ORGANISATION_DOMAINS`` in the config file: what is
read, and one clause naming the table and key for each problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from burnlink.config import Settings, load_settings
from burnlink.errors import ConfigError
from burnlink.teams import TeamPolicy

SIGN_IN = """
oidc_issuer = "https://idp.example.test"
oidc_client_id = "burnlink"
oidc_client_secret = "client-secret"
base_url = "http://127.0.0.1:8000"
organisation_domains = ["Example.com"]
"""


def settings_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str) -> Settings:
    config = tmp_path / "burnlink.toml"
    config.write_text(toml, encoding="utf-8")
    monkeypatch.setenv("BURNLINK_CONFIG", str(config))
    return load_settings(store="memory://")


def problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        settings_from(tmp_path, monkeypatch, toml)
    message = str(raised.value).removeprefix("invalid configuration: ")
    return message.split("; ")


def test_teams_config_reads_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        tmp_path,
        monkeypatch,
        SIGN_IN
        + """
[teams.engineering]
max_ttl = "7d"
max_views = 5
require_passphrase = true
recipients_inside = true
recipients_require_mfa = true
allowed_countries = ["de", "FR"]

[teams."Site Reliability"]
max_ttl = 3600
create = "nobody"
""",
    )

    assert settings.organisation_domains == ["example.com"]
    assert settings.teams == {
        "engineering": TeamPolicy(
            max_ttl=7 * 86400,
            max_views=5,
            require_passphrase=True,
            recipients_inside=True,
            recipients_require_mfa=True,
            allowed_countries=("DE", "FR"),
        ),
        "Site Reliability": TeamPolicy(max_ttl=3600, create="nobody"),
    }
    assert settings.masked()["teams"] == {
        "engineering": {
            "max_ttl": 604800,
            "max_views": 5,
            "require_passphrase": True,
            "recipients_inside": True,
            "recipients_require_mfa": True,
            "allowed_countries": ["DE", "FR"],
        },
        "Site Reliability": {"max_ttl": 3600, "create": "nobody"},
    }


def test_teams_config_none_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from(tmp_path, monkeypatch, SIGN_IN).teams == {}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        pytest.param(
            "max_view = 3",
            "[teams.sales] max_view: unknown key (the keys are max_ttl, max_views",
            id="unknown-key",
        ),
        pytest.param('max_views = "3"', "[teams.sales] max_views: must be an integer", id="type"),
        pytest.param("max_views = 0", "[teams.sales] max_views: must be at least 1", id="zero"),
        pytest.param(
            "max_views = 101",
            "[teams.sales] max_views: must be from 1 to BURNLINK_MAX_VIEWS (100)",
            id="views-above-server",
        ),
        pytest.param(
            'max_ttl = "3 days"',
            "[teams.sales] max_ttl: must be a number of seconds, or one with a unit",
            id="duration",
        ),
        pytest.param(
            "max_ttl = 30",
            "[teams.sales] max_ttl: must be from BURNLINK_MIN_TTL (60) to BURNLINK_MAX_TTL",
            id="ttl-below-min",
        ),
        pytest.param(
            'max_ttl = "5w"',
            "[teams.sales] max_ttl: must be from BURNLINK_MIN_TTL (60) to BURNLINK_MAX_TTL",
            id="ttl-above-max",
        ),
        pytest.param(
            'allowed_countries = ["DE", "XX"]',
            "[teams.sales] allowed_countries: each entry must be an ISO 3166 alpha-2",
            id="country",
        ),
        pytest.param(
            'allowed_countries = "DE"',
            "[teams.sales] allowed_countries: must be a list",
            id="countries-type",
        ),
        pytest.param(
            "allowed_countries = []",
            "[teams.sales] allowed_countries: must name at least one country",
            id="no-countries",
        ),
        pytest.param(
            'require_passphrase = "yes"',
            "[teams.sales] require_passphrase: must be true or false",
            id="bool",
        ),
        pytest.param(
            "recipients_require_mfa = 1",
            "[teams.sales] recipients_require_mfa: must be true or false",
            id="int-as-bool",
        ),
        pytest.param(
            'create = "login"', '[teams.sales] create: must be "anyone" or "nobody"', id="create"
        ),
    ],
)
def test_teams_config_each_problem_names_table_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, expected: str
) -> None:
    found = problems(tmp_path, monkeypatch, SIGN_IN + f"[teams.sales]\n{table}\n")

    assert len(found) == 1
    assert found[0].startswith(expected), found


def test_teams_config_reports_every_problem_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = problems(
        tmp_path,
        monkeypatch,
        SIGN_IN + '[teams.a]\nmax_views = "x"\nbogus = 1\n[teams.b]\ncreate = "sometimes"\n',
    )

    assert [line.split(":")[0] for line in found] == [
        "[teams.a] bogus",
        "[teams.a] max_views",
        "[teams.b] create",
    ]


def test_teams_config_recipients_inside_needs_organisation_domains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = SIGN_IN.replace('organisation_domains = ["Example.com"]', "")

    found = problems(tmp_path, monkeypatch, toml + "[teams.sales]\nrecipients_inside = true\n")

    assert found == [
        "[teams.sales] recipients_inside: needs BURNLINK_ORGANISATION_DOMAINS, the email"
        " domains inside the organisation"
    ]


def test_teams_config_needs_sign_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(tmp_path, monkeypatch, "[teams.sales]\nmax_views = 3\n")

    assert found[0].startswith("[teams.*] need sign-in configured (BURNLINK_OIDC_ISSUER)")


def test_teams_config_countries_outside_the_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = SIGN_IN + 'allowed_countries = ["DE"]\n[teams.sales]\nallowed_countries = ["US"]\n'

    found = problems(tmp_path, monkeypatch, toml)

    assert found[0].startswith("[teams.sales] allowed_countries: none is in")


def test_teams_config_a_table_not_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(tmp_path, monkeypatch, SIGN_IN + "teams = 3\n")

    assert found == ["teams must be TOML tables, one per team: [teams.NAME]"]


def test_teams_config_bad_organisation_domain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = SIGN_IN.replace('["Example.com"]', '["not a domain"]')

    found = problems(tmp_path, monkeypatch, toml)

    assert found == [
        "BURNLINK_ORGANISATION_DOMAINS: each entry must be an email domain such as example.com"
    ]


def test_teams_config_too_many_teams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = "".join(f"[teams.t{n}]\nmax_views = 1\n" for n in range(101))

    found = problems(tmp_path, monkeypatch, SIGN_IN + tables)

    assert found == ["teams: at most 100 tables"]


def test_teams_config_from_the_environment_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURNLINK_TEAMS", '{"sales": {"max_views": 3}}')

    settings = settings_from(tmp_path, monkeypatch, SIGN_IN)

    assert settings.teams == {"sales": TeamPolicy(max_views=3)}


def test_teams_config_from_the_environment_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURNLINK_TEAMS", "sales")

    found = problems(tmp_path, monkeypatch, SIGN_IN)

    assert found == [
        "teams: write them as [teams.NAME] tables in the config file, or"
        " BURNLINK_TEAMS as a JSON object"
    ]
