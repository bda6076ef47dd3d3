"""Resolution of a user's rules from their groups (``burnlink.teams.resolve``): the strictest of
the server's and every team's wins."""

from __future__ import annotations

from typing import Any

import pytest

from burnlink.teams import TeamPolicy, resolve

SERVER: dict[str, Any] = {"max_ttl": 30 * 86400, "max_views": 100, "require_passphrase": False}
TEAMS = {
    "engineering": TeamPolicy(max_ttl=7 * 86400, max_views=5, allowed_countries=("DE", "FR")),
    "admins": TeamPolicy(max_ttl=3600, require_passphrase=True, allowed_countries=("FR", "NL")),
    "sales": TeamPolicy(max_views=3, recipients_inside=True),
    "finance": TeamPolicy(recipients_require_mfa=True, allowed_countries=("US",)),
    "contractors": TeamPolicy(create="nobody"),
}


def test_resolve_a_user_in_no_team_gets_the_server_policy() -> None:
    rules = resolve(TEAMS, ["marketing"], **SERVER)

    assert rules.teams == ()
    assert (rules.max_ttl, rules.max_views, rules.require_passphrase) == (30 * 86400, 100, False)
    assert rules.countries is None
    assert rules.may_create
    assert not rules.recipients_required
    assert rules.imposed == {}


def test_resolve_an_anonymous_sender_is_in_no_team() -> None:
    assert resolve(TEAMS, (), **SERVER) == resolve({}, (), **SERVER)


def test_resolve_one_team_tightens_the_server() -> None:
    rules = resolve(TEAMS, ["engineering"], **SERVER)

    assert rules.teams == ("engineering",)
    assert (rules.max_ttl, rules.max_views) == (7 * 86400, 5)
    assert rules.countries == ("DE", "FR")
    assert rules.by("ttl") == ("engineering",)


def test_resolve_two_teams_the_strictest_of_each_rule_wins() -> None:
    rules = resolve(TEAMS, ["engineering", "admins"], **SERVER)

    assert rules.max_ttl == 3600  # admins'
    assert rules.max_views == 5  # engineering's
    assert rules.require_passphrase  # admins'
    assert rules.countries == ("FR",)  # the intersection
    assert rules.by("ttl") == ("engineering", "admins")
    assert rules.by("passphrase") == ("admins",)
    assert rules.by("allowed_countries") == ("engineering", "admins")


def test_resolve_a_team_never_loosens_the_server() -> None:
    loose = {"loose": TeamPolicy(max_ttl=90 * 86400, max_views=1000)}

    rules = resolve(loose, ["loose"], max_ttl=3600, max_views=10, require_passphrase=True)

    assert (rules.max_ttl, rules.max_views, rules.require_passphrase) == (3600, 10, True)
    assert "ttl" not in rules.imposed
    assert "max_views" not in rules.imposed


def test_resolve_recipient_rules_add_up() -> None:
    rules = resolve(TEAMS, ["sales", "finance"], **SERVER)

    assert rules.recipients_inside
    assert rules.recipients_require_mfa
    assert rules.recipients_required
    assert rules.by("recipients") == ("sales", "finance")
    assert rules.by("require_mfa") == ("finance",)


def test_resolve_names_a_team_once_per_rule() -> None:
    both = {"sales": TeamPolicy(recipients_inside=True, recipients_require_mfa=True)}

    assert resolve(both, ["sales"], **SERVER).by("recipients") == ("sales",)


def test_resolve_create_nobody_in_any_team_refuses() -> None:
    rules = resolve(TEAMS, ["engineering", "contractors"], **SERVER)

    assert not rules.may_create
    assert rules.refusal is not None
    assert "contractors" in rules.refusal
    assert "engineering" not in rules.refusal


def test_resolve_countries_with_nothing_in_common_refuse() -> None:
    rules = resolve(TEAMS, ["engineering", "finance"], **SERVER)

    assert rules.countries == ()
    assert not rules.may_create
    assert rules.refusal is not None
    assert "engineering, finance" in rules.refusal


@pytest.mark.parametrize(
    "groups",
    [
        pytest.param(["Engineering"], id="case"),
        pytest.param([" engineering"], id="space"),
        pytest.param(["engineering-ops"], id="prefix"),
        pytest.param(["group:engineering"], id="prefixed"),
    ],
)
def test_resolve_team_names_match_exactly(groups: list[str]) -> None:
    assert resolve(TEAMS, groups, **SERVER).teams == ()


def test_resolve_lists_teams_in_config_order() -> None:
    rules = resolve(TEAMS, ["sales", "engineering", "unknown"], **SERVER)

    assert rules.teams == ("engineering", "sales")
