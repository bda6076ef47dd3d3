"""Teams: per-group rules for creating secrets, read from ``[teams.NAME]`` tables of the config
file, and the pure resolution of the rules that apply to one user (docs/identity.md § Teams).

A team is a group of the identity provider's groups claim, named exactly as the provider
spells it; there is no second user database. A user in several configured teams is held to
all of them, and to the server's own limits: the strictest wins (the least ``max_ttl`` and
``max_views``, any ``true`` of the booleans, the intersection of ``allowed_countries``, and
``create = "nobody"`` in any of them refuses). A user in no configured team, and an anonymous
sender, get the server's policy alone.

Nothing here does I/O or knows about HTTP; ``service.team_policy`` applies the result to a
create.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from burnlink.errors import InvalidInput
from burnlink.policy import parse_countries

__all__ = [
    "KEYS",
    "MAX_TEAMS",
    "Resolution",
    "TeamPolicy",
    "TeamsInvalid",
    "parse_duration",
    "parse_teams",
    "resolve",
]

MAX_TEAMS: Final = 100
"""Most ``[teams.NAME]`` tables a config may hold."""
MAX_NAME_CHARS: Final = 256
"""Longest team (group) name, as for ``BURNLINK_CREATE_ALLOWED_GROUPS``."""
KEYS: Final = (
    "max_ttl",
    "max_views",
    "require_passphrase",
    "recipients_inside",
    "recipients_require_mfa",
    "allowed_countries",
    "create",
)
"""The keys a ``[teams.NAME]`` table may hold; any other is an error."""
_DURATION_RE: Final = re.compile(r"(?P<count>[0-9]{1,10})\s*(?P<unit>[smhdw]?)")
_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, slots=True)
class TeamPolicy:
    """One team's rules; ``None`` (or ``False``, or empty) leaves the server's own in force."""

    max_ttl: int | None = None
    """Seconds a secret of a member may live at most."""
    max_views: int | None = None
    require_passphrase: bool = False
    recipients_inside: bool = False
    """Every secret needs recipients, each inside ``BURNLINK_ORGANISATION_DOMAINS``."""
    recipients_require_mfa: bool = False
    """Every secret needs recipients, who must sign in with a second factor to open it."""
    allowed_countries: tuple[str, ...] | None = None
    """Countries every reveal must come from; ``None``: the team sets none."""
    create: Literal["anyone", "nobody"] = "anyone"

    def rules(self) -> dict[str, object]:
        """The rules the team sets, as written in the config (for ``config check``)."""
        shown: dict[str, object] = {}
        if self.max_ttl is not None:
            shown["max_ttl"] = self.max_ttl
        if self.max_views is not None:
            shown["max_views"] = self.max_views
        for name in ("require_passphrase", "recipients_inside", "recipients_require_mfa"):
            if getattr(self, name):
                shown[name] = True
        if self.allowed_countries is not None:
            shown["allowed_countries"] = list(self.allowed_countries)
        if self.create != "anyone":
            shown["create"] = self.create
        return shown


class TeamsInvalid(ValueError):
    """Raised by ``parse_teams`` with one line per problem, each naming its table and key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_duration(value: object) -> int:
    """Seconds from a positive integer, or a string such as ``"90s"``, ``"30m"``, ``"12h"``,
    ``"7d"`` or ``"1w"``; else ``ValueError`` saying what is expected."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError("must be at least 1 second")
        return value
    if isinstance(value, str):
        match = _DURATION_RE.fullmatch(value.strip().lower())
        if match is not None and int(match["count"]) > 0:
            return int(match["count"]) * _UNIT_SECONDS[match["unit"]]
    raise ValueError('must be a number of seconds, or one with a unit: "30m", "12h", "7d", "1w"')


def _table(name: str, raw: object) -> tuple[TeamPolicy | None, list[str]]:
    where = f"[teams.{name}]"
    if not isinstance(raw, Mapping):
        return None, [f"{where} must be a table of rules ({', '.join(KEYS)})"]
    problems: list[str] = []
    values: dict[str, object] = {}
    for key in sorted(str(k) for k in raw if str(k) not in KEYS):
        problems.append(f"{where} {key[:64]}: unknown key (the keys are {', '.join(KEYS)})")
    for key, value in raw.items():
        if key not in KEYS:
            continue
        try:
            values[key] = _value(key, value)
        except ValueError as exc:
            problems.append(f"{where} {key}: {exc}")
    if problems:
        return None, problems
    return TeamPolicy(**values), []  # type: ignore[arg-type] # each value checked by _value


def _value(key: str, value: object) -> object:
    if key == "max_ttl":
        return parse_duration(value)
    if key == "max_views":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("must be an integer")
        if value < 1:
            raise ValueError("must be at least 1")
        return value
    if key == "allowed_countries":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError('must be a list of ISO 3166 alpha-2 codes: ["DE", "FR"]')
        if not value:
            raise ValueError("must name at least one country (leave the key out for any)")
        try:
            return parse_countries(value, field="allowed_countries")
        except InvalidInput:
            raise ValueError("each entry must be an ISO 3166 alpha-2 country code") from None
    if key == "create":
        if value not in ("anyone", "nobody"):
            raise ValueError('must be "anyone" or "nobody"')
        return value
    # The booleans: TOML has true and false; no "yes", no 1.
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def parse_teams(raw: object) -> dict[str, TeamPolicy]:
    """The teams of a config's ``teams`` table: ``{name: TeamPolicy}``; ``TeamsInvalid`` with
    one line per problem (an unknown key, a wrong type, a bad duration or country, a value
    out of range, a bad name, too many teams)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise TeamsInvalid(["teams must be TOML tables, one per team: [teams.NAME]"])
    problems: list[str] = []
    teams: dict[str, TeamPolicy] = {}
    if len(raw) > MAX_TEAMS:
        raise TeamsInvalid([f"teams: at most {MAX_TEAMS} tables"])
    for name, table in raw.items():
        name = str(name)
        if not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
            problems.append(
                f"[teams.{name[:64]!r}] the name must be 1 to {MAX_NAME_CHARS} printable"
                " characters (the group as the provider's groups claim spells it)"
            )
            continue
        team, found = _table(name, table)
        problems.extend(found)
        if team is not None:
            teams[name] = team
    if problems:
        raise TeamsInvalid(problems)
    return teams


@dataclass(frozen=True, slots=True)
class Resolution:
    """The rules for one user: the server's, tightened by every configured team they are in.

    ``imposed`` says, for each rule a team tightened, which of the user's teams did it (the
    teams a refusal names).
    """

    teams: tuple[str, ...]
    """The user's groups that are configured teams, in config order."""
    max_ttl: int
    max_views: int
    require_passphrase: bool
    recipients_inside: bool
    recipients_require_mfa: bool
    countries: tuple[str, ...] | None
    """Countries every reveal must come from, by the teams; ``None``: no team sets any."""
    refusal: str | None = None
    """Why this user may create nothing at all (``create = "nobody"``, countries that do not
    overlap); ``None`` when they may."""
    imposed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def may_create(self) -> bool:
        """Whether the teams let this user create at all."""
        return self.refusal is None

    @property
    def recipients_required(self) -> bool:
        """Whether every secret of this user must name recipients."""
        return self.recipients_inside or self.recipients_require_mfa

    def by(self, rule: str) -> tuple[str, ...]:
        """The teams that imposed ``rule`` (every team of the user if none is recorded)."""
        return self.imposed.get(rule) or self.teams


def resolve(
    teams: Mapping[str, TeamPolicy],
    groups: Iterable[str],
    *,
    max_ttl: int,
    max_views: int,
    require_passphrase: bool,
) -> Resolution:
    """The rules for a user in ``groups`` (``()`` for an anonymous sender), starting from the
    server's ``max_ttl``, ``max_views`` and ``require_passphrase``. Group names are compared
    exactly (case and spaces count), as the provider sends them."""
    member = set(groups)
    mine = tuple(name for name in teams if name in member)
    imposed: dict[str, list[str]] = {}

    def tighten(rule: str, name: str) -> None:
        names = imposed.setdefault(rule, [])
        if name not in names:
            names.append(name)

    ttl, views, passphrase = max_ttl, max_views, require_passphrase
    inside = mfa = False
    countries: set[str] | None = None
    order: list[str] = []
    nobody: list[str] = []
    for name in mine:
        team = teams[name]
        if team.max_ttl is not None and team.max_ttl < max_ttl:
            ttl = min(ttl, team.max_ttl)
            tighten("ttl", name)
        if team.max_views is not None and team.max_views < max_views:
            views = min(views, team.max_views)
            tighten("max_views", name)
        if team.require_passphrase:
            passphrase = True
            tighten("passphrase", name)
        if team.recipients_inside:
            inside = True
            tighten("recipients", name)
        if team.recipients_require_mfa:
            mfa = True
            tighten("require_mfa", name)
            tighten("recipients", name)
        if team.allowed_countries is not None:
            allowed = set(team.allowed_countries)
            countries = allowed if countries is None else countries & allowed
            order.extend(c for c in team.allowed_countries if c not in order)
            tighten("allowed_countries", name)
        if team.create == "nobody":
            nobody.append(name)
            tighten("create", name)
    refusal = None
    if nobody:
        whose = "Your teams" if len(nobody) > 1 else "Your team"
        refusal = f"{whose} ({', '.join(nobody)}) may not create secrets on this server."
    elif countries is not None and not countries:
        refusal = (
            "Your teams' allowed countries have none in common"
            f" ({', '.join(imposed['allowed_countries'])}): no secret could be opened anywhere."
        )
    return Resolution(
        teams=mine,
        max_ttl=ttl,
        max_views=views,
        require_passphrase=passphrase,
        recipients_inside=inside,
        recipients_require_mfa=mfa,
        countries=None if countries is None else tuple(c for c in order if c in countries),
        refusal=refusal,
        imposed={rule: tuple(names) for rule, names in imposed.items()},
    )
