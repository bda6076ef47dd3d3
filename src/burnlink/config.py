"""Settings: read once from ``BURNLINK_*`` environment variables (and, optionally, a TOML file
named by ``BURNLINK_CONFIG``) into a frozen, validated object. The environment wins over the
file.

Every field is documented in docs/configuration.md (a test keeps the two in step). Nothing
else in burnlink reads the environment.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from platformdirs import user_data_dir
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from burnlink.clientip import ProxyHeader
from burnlink.envelope import MAX_ITERATIONS, MIN_ITERATIONS
from burnlink.errors import ConfigError, InvalidInput
from burnlink.hosts import is_loopback, normalise_host
from burnlink.policy import parse_countries, parse_networks
from burnlink.setting_files import SettingFiles, read_setting_file
from burnlink.teams import TeamPolicy, TeamsInvalid, parse_teams

CONFIG_FILE_VARIABLE = "BURNLINK_CONFIG"

# Lists read from the environment as comma-separated values ("10.0.0.0/8, 192.168.0.0/16").
CommaList = Annotated[list[str], NoDecode]


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT_RE = re.compile(
    r"^\s*(\d+)\s*/\s*(?:(\d+)\s*)?(second|minute|hour|day)s?\s*$", re.IGNORECASE
)
MAX_WINDOW = 7 * 86400


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` events per ``window`` seconds."""

    count: int
    window: int

    @staticmethod
    def parse(text: str) -> Limit | None:
        """``"10/minute"`` → ``Limit(10, 60)``, ``"30/10 minutes"`` → ``Limit(30, 600)``;
        ``"off"`` → ``None``; else ``ValueError``."""
        return _parse_limit(text)


@functools.lru_cache(maxsize=64)
def _parse_limit(text: str) -> Limit | None:
    # Cached: the settings' limits are read on every request.
    if text.strip().lower() == "off":
        return None
    match = _LIMIT_RE.fullmatch(text)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            "must look like 10/minute or 30/10 minutes (second, minute, hour, day) or be off"
        )
    window = int(match.group(2) or 1) * _UNITS[match.group(3).lower()]
    if not 0 < window <= MAX_WINDOW:
        raise ValueError("the window must be from 1 second to 7 days")
    return Limit(int(match.group(1)), window)


def default_store_url() -> str:
    """The embedded default: a SQLite file in the user's data directory."""
    return f"sqlite://{Path(user_data_dir('burnlink')) / 'burnlink.db'}"


def default_key_dir() -> str:
    """Where generated keys go: the user's data directory."""
    return user_data_dir("burnlink")


_AUDIT_SCHEMES = ("sqlite", "postgresql", "postgres", "memory")

DEFAULT_MFA_AMR = (
    "mfa",
    "otp",
    "hwk",
    "swk",
    "sms",
    "fpt",
    "face",
    "iris",
    "retina",
    "sc",
    "tel",
    "vbm",
)
"""``amr`` values (RFC 8176) that mean a second factor; ``pwd`` alone does not."""
_CLAIM_VALUE_RE = re.compile(r"^[\x21-\x7e]{1,200}$")


class Settings(BaseSettings):
    """burnlink's configuration. Build it with ``load_settings``."""

    model_config = SettingsConfigDict(env_prefix="BURNLINK_", frozen=True, extra="forbid")

    store: str = Field(default_factory=default_store_url, min_length=1)
    """Store URL: ``sqlite:///path``, ``redis://…``, ``postgresql://…`` or ``memory://``."""
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    """Public base of links (``https://secrets.example.com``); else taken from each request."""
    allowed_hosts: CommaList = Field(default_factory=list, max_length=100)
    """``Host`` values the server answers to (``secrets.example.com``); empty: any."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    header_timeout: float = Field(default=10.0, gt=0, le=3600)
    """Seconds a client has to send a request's line and header fields (docs/operations.md)."""
    body_timeout: float = Field(default=20.0, gt=0, le=3600)
    """Most seconds between two reads of a request body."""
    send_timeout: float = Field(default=20.0, gt=0, le=3600)
    """Most seconds a client may leave its answer unread while the server waits to write."""
    max_header_bytes: int = Field(default=64 * 1024, ge=4096, le=1024 * 1024)
    """Largest request head (request line and header fields); larger ones get 431."""
    max_headers: int = Field(default=100, ge=16, le=1000)
    """Most header fields in one request; more get 431."""
    max_connections: int = Field(default=4096, ge=1, le=1_000_000)
    """Connections one worker process holds at once (the open-file limit may lower it)."""
    min_ttl: int = Field(default=60, ge=1)
    max_ttl: int = Field(default=30 * 86400, ge=1)
    default_ttl: int = Field(default=86400, ge=1)
    max_views: int = Field(default=100, ge=1, le=1_000_000)
    max_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    passphrase_attempts: int = Field(default=5, ge=1, le=100)
    receipt_days: int = Field(default=30, ge=0, le=3650)
    sweep_interval: float = Field(default=60.0, gt=0, le=86400)
    pbkdf2_iterations: int = Field(default=MIN_ITERATIONS, ge=MIN_ITERATIONS, le=MAX_ITERATIONS)
    kdf_concurrency: int = Field(default=2, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    trusted_proxies: CommaList = Field(default_factory=list)
    proxy_header: ProxyHeader = "x-forwarded-for"
    """The one header the trusted proxies name the client in; every other is ignored."""
    require_passphrase: bool = False
    allowed_countries: CommaList = Field(default_factory=list)
    create_allowed_ips: CommaList = Field(default_factory=list)
    rate_limit_create: str = "30/minute"
    rate_limit_reveal: str = "120/minute"
    rate_limit_verify: str = "5/hour"
    rate_limit_failures: str = "30/10 minutes"
    """Failed reveals per client, on any secrets; short, so that one office behind one NAT
    address is not locked out for long by whoever fails most."""
    rate_limit_secret_failures: str = "10/hour"  # noqa: S105 - a rate limit, not a secret
    """Failed reveals per client on one secret: that link is locked for that client first."""
    rate_limit_admin: str = "10/hour"
    """Wrong admin tokens per client."""
    geoip_db: str | None = None
    smtp_url: SecretStr | None = None
    smtp_from: str | None = None
    audit_store: str | None = None
    """Audit log URL; by default the store's own database (docs/audit.md)."""
    audit_days: int = Field(default=365, ge=0, le=36500)
    audit_key: SecretStr | None = None
    audit_sink: str | None = None
    """``-`` (stdout) or a file: every audit entry as a JSON line, for a SIEM."""
    audit_checkpoint_interval: float = Field(default=300.0, gt=0, le=86400)
    """Seconds between signed checkpoints of the audit head (``audit.checkpoint``)."""
    audit_checkpoint_file: str | None = Field(default=None, min_length=1)
    """A file each checkpoint replaces (for ``burnlink audit verify --checkpoint``)."""
    audit_checkpoint_url: str | None = None
    """A webhook each checkpoint is POSTed to (signed with ``webhook_secret``)."""
    key_dir: str = Field(default_factory=default_key_dir, min_length=1)
    signing_key: SecretStr | None = None
    admin_token: SecretStr | None = None
    admin_groups: CommaList = Field(default_factory=list, max_length=100)
    """Groups (the provider's groups claim) whose members may use the admin console after a
    fresh sign-in with a second factor; empty (the default): no console."""
    admin_max_age: int = Field(default=900, ge=30, le=86400)
    """Seconds an admin's sign-in (with its second factor) serves the console before it asks
    for a new one."""
    metrics_token: SecretStr | None = None
    """Bearer token ``GET /metrics`` needs; unset: only direct loopback peers are served."""
    webhook_secret: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    """The Slack app's signing secret: set, ``POST /integrations/slack/command`` answers the
    ``/burnlink`` slash command (docs/integrations.md § Slack); unset, it does not exist."""
    webhook_allow: CommaList = Field(default_factory=list)
    alert_url: str | None = None
    alert_failed_reveals: str = "3/hour"
    alert_not_found: str = "10/hour"
    oidc_issuer: str | None = Field(default=None, max_length=512)
    """OpenID Connect issuer URL; unset (the default): no sign-in, no routes change."""
    oidc_client_id: str | None = Field(default=None, min_length=1, max_length=256)
    oidc_client_secret: SecretStr | None = None
    oidc_client_secret_file: str | None = Field(default=None, min_length=1)
    """A file holding the client secret (instead of ``oidc_client_secret``)."""
    oidc_scopes: str = Field(default="openid email profile", max_length=512)
    oidc_email_claim: str = Field(default="email", pattern=r"^[A-Za-z0-9_.:/-]{1,100}$")
    oidc_groups_claim: str = Field(default="groups", pattern=r"^[A-Za-z0-9_.:/-]{1,100}$")
    oidc_require_mfa: bool = False
    oidc_mfa_amr: CommaList = Field(default_factory=lambda: list(DEFAULT_MFA_AMR), max_length=50)
    """``amr`` values that mean a second factor (RFC 8176)."""
    oidc_mfa_acr: CommaList = Field(default_factory=list, max_length=50)
    """``acr`` values the operator accepts as a second factor."""
    oidc_max_age: int = Field(default=300, ge=30, le=86400)
    """Seconds a sign-in counts as fresh for sensitive actions (creating an API token)."""
    recipient_max_age: int = Field(default=300, ge=30, le=3600)
    """Seconds a recipient's second-factor sign-in counts as fresh for a secret with
    ``require_mfa`` (five minutes by default)."""
    session_idle_timeout: int = Field(default=8 * 3600, ge=60, le=30 * 86400)
    """Seconds a signed-in session may go unused before it ends."""
    session_max_age: int = Field(default=7 * 86400, ge=300, le=90 * 86400)
    """Seconds a session lasts at most, however active."""
    create_requires: Literal["anyone", "login"] = "anyone"
    """Who may create secrets: ``anyone``, or only signed-in users (docs/identity.md)."""
    create_allowed_domains: CommaList = Field(default_factory=list, max_length=100)
    """With ``login``: email domains whose users may create (empty, with no groups: any)."""
    create_allowed_groups: CommaList = Field(default_factory=list, max_length=100)
    """With ``login``: groups (the provider's groups claim) whose members may create."""
    organisation_domains: CommaList = Field(default_factory=list, max_length=100)
    """Email domains inside the organisation (a team's ``recipients_inside``)."""
    teams: Annotated[dict[str, TeamPolicy], NoDecode] = Field(default_factory=dict)
    """``[teams.NAME]`` tables of the config file: per-group rules (docs/identity.md § Teams)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment (with ``BURNLINK_<NAME>_FILE``, ``setting_files``),
        then the TOML file named by ``BURNLINK_CONFIG``."""
        files = SettingFiles(settings_cls)
        path = os.environ.get(CONFIG_FILE_VARIABLE)
        if not path:
            return init_settings, env_settings, files
        if not Path(path).is_file():
            raise ConfigError(f"{CONFIG_FILE_VARIABLE}: no such file: {path}")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        return init_settings, env_settings, files, toml

    @field_validator(
        "trusted_proxies",
        "allowed_countries",
        "create_allowed_ips",
        "allowed_hosts",
        "oidc_mfa_amr",
        "oidc_mfa_acr",
        "create_allowed_domains",
        "create_allowed_groups",
        "admin_groups",
        "organisation_domains",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", "create_allowed_ips")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        try:
            return [str(n) for n in parse_networks(value, field="networks")]
        except InvalidInput as exc:
            # The reason says what is wrong: a malformed entry, or more entries than allowed.
            raise ValueError(exc.reason) from None

    @field_validator("create_allowed_domains", "organisation_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        domains = [entry.strip().removeprefix("@").lower() for entry in value]
        if any(not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain) for domain in domains):
            raise ValueError("each entry must be an email domain such as example.com")
        return domains

    @field_validator("create_allowed_groups", "admin_groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        if any(len(group) > 256 for group in value):
            raise ValueError("each entry must be at most 256 characters")
        return value

    @model_validator(mode="after")
    def _login_needs_sign_in(self) -> Self:
        # Sign-in is configured by BURNLINK_OIDC_ISSUER (docs/identity.md).
        if self.create_requires == "login" and getattr(self, "oidc_issuer", None) is None:
            raise ValueError(
                "BURNLINK_CREATE_REQUIRES=login needs sign-in configured (BURNLINK_OIDC_ISSUER)"
            )
        if self.admin_groups and getattr(self, "oidc_issuer", None) is None:
            raise ValueError(
                "BURNLINK_ADMIN_GROUPS needs sign-in configured (BURNLINK_OIDC_ISSUER)"
            )
        if self.create_requires == "anyone" and (
            self.create_allowed_domains or self.create_allowed_groups
        ):
            raise ValueError(
                "BURNLINK_CREATE_ALLOWED_DOMAINS and _GROUPS apply only with"
                " BURNLINK_CREATE_REQUIRES=login"
            )
        return self

    @field_validator("teams", mode="plain")
    @classmethod
    def _teams(cls, value: object) -> dict[str, TeamPolicy]:
        if isinstance(value, str):
            # Only the config file can hold tables; in the environment, a JSON object.
            try:
                value = json.loads(value)
            except ValueError:
                raise TeamsInvalid(
                    [
                        "teams: write them as [teams.NAME] tables in the config file, or"
                        " BURNLINK_TEAMS as a JSON object"
                    ]
                ) from None
        return parse_teams(value)

    @field_serializer("teams")
    def _team_rules(self, teams: dict[str, TeamPolicy]) -> dict[str, dict[str, object]]:
        return {name: team.rules() for name, team in teams.items()}

    @model_validator(mode="after")
    def _teams_fit_the_server(self) -> Self:
        problems = []
        if self.teams and not self.sign_in:
            problems.append(
                "[teams.*] need sign-in configured (BURNLINK_OIDC_ISSUER): teams come from"
                " the provider's groups claim"
            )
        for name, team in self.teams.items():
            where = f"[teams.{name}]"
            if team.max_ttl is not None and not self.min_ttl <= team.max_ttl <= self.max_ttl:
                problems.append(
                    f"{where} max_ttl: must be from BURNLINK_MIN_TTL ({self.min_ttl}) to"
                    f" BURNLINK_MAX_TTL ({self.max_ttl}) seconds"
                )
            if team.max_views is not None and team.max_views > self.max_views:
                problems.append(
                    f"{where} max_views: must be from 1 to BURNLINK_MAX_VIEWS ({self.max_views})"
                )
            if team.recipients_inside and not self.organisation_domains:
                problems.append(
                    f"{where} recipients_inside: needs BURNLINK_ORGANISATION_DOMAINS, the email"
                    " domains inside the organisation"
                )
            countries = team.allowed_countries
            if (
                countries
                and self.allowed_countries
                and set(countries).isdisjoint(self.allowed_countries)
            ):
                problems.append(
                    f"{where} allowed_countries: none is in BURNLINK_ALLOWED_COUNTRIES, so"
                    " no secret of the team could be opened anywhere"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("proxy_header", mode="before")
    @classmethod
    def _header_name(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        hosts = [normalise_host(entry) for entry in value]
        if None in hosts:
            raise ValueError(
                "each entry must be a host name or IP address as sent in Host, with its port"
                " when that is not the scheme's default (secrets.example.com, [2001:db8::1]:8443)"
            )
        return [host for host in hosts if host is not None]

    @field_validator("allowed_countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        try:
            return list(parse_countries(value, field="countries"))
        except InvalidInput:
            raise ValueError("each entry must be an ISO 3166 alpha-2 country code") from None

    @field_validator(
        "rate_limit_create",
        "rate_limit_reveal",
        "rate_limit_verify",
        "rate_limit_failures",
        "rate_limit_secret_failures",
        "rate_limit_admin",
        "alert_failed_reveals",
        "alert_not_found",
    )
    @classmethod
    def _limit(cls, value: str) -> str:
        Limit.parse(value)
        return value

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _split_allow(cls, value: object) -> object:
        if isinstance(value, str):
            return value.replace(",", " ").split()
        return value

    @field_validator("webhook_allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        from burnlink.netguard import AllowList

        try:
            AllowList.parse(value)
        except ConfigError:
            raise ValueError("each entry must be a host name, an IP address or a network") from None
        return value

    @field_validator("audit_store")
    @classmethod
    def _audit_scheme(cls, value: str | None) -> str | None:
        if value is not None and value.partition("://")[0].lower() not in _AUDIT_SCHEMES:
            raise ValueError("use sqlite:///path, postgresql://host or memory:// (not Redis)")
        return value

    @field_validator("audit_key")
    @classmethod
    def _audit_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from burnlink.audit.chain import parse_key

            try:
                parse_key(value.get_secret_value())
            except ConfigError:
                raise ValueError("must be at least 32 random bytes, in hex or base64") from None
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from burnlink.webhooks import parse_webhook_secret

            try:
                parse_webhook_secret(value.get_secret_value())
            except InvalidInput:
                raise ValueError("must be whsec_ followed by 24 to 64 bytes in base64") from None
        return value

    @field_validator("admin_token", "metrics_token")
    @classmethod
    def _admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters (use a long random string)")
        return value

    @field_validator("alert_url", "audit_checkpoint_url")
    @classmethod
    def _alert_url(cls, value: str | None) -> str | None:
        if value is not None:
            from burnlink.netguard import UnsafeUrl, check_url

            try:
                check_url(value)
            except UnsafeUrl as exc:
                raise ValueError(exc.reason) from None
        return value

    @model_validator(mode="after")
    def _alerts_are_signed(self) -> Self:
        if self.alert_url is not None and self.webhook_secret is None:
            raise ValueError("BURNLINK_WEBHOOK_SECRET is required when BURNLINK_ALERT_URL is set")
        if self.audit_checkpoint_url is not None and self.webhook_secret is None:
            raise ValueError(
                "BURNLINK_WEBHOOK_SECRET is required when BURNLINK_AUDIT_CHECKPOINT_URL is set"
            )
        return self

    @field_validator("smtp_from")
    @classmethod
    def _smtp_from(cls, value: str | None) -> str | None:
        if value is not None:
            from burnlink.mailer import sender_address

            try:
                sender_address(value)
            except ConfigError:
                raise ValueError(
                    "must be one email address, optionally with a name: burnlink <a@example.org>"
                ) from None
        return value

    @model_validator(mode="after")
    def _smtp_complete(self) -> Self:
        if self.smtp_url is not None and not self.smtp_from:
            raise ValueError("BURNLINK_SMTP_FROM is required when BURNLINK_SMTP_URL is set")
        return self

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        issuer = value.strip()
        if not https_or_loopback(issuer):
            raise ValueError(
                "must be an https:// URL (http:// only for a loopback address), without query"
                " or fragment: https://login.example.com/realms/main"
            )
        return issuer

    @field_validator("oidc_mfa_amr", "oidc_mfa_acr")
    @classmethod
    def _claim_values(cls, value: list[str]) -> list[str]:
        if not all(_CLAIM_VALUE_RE.fullmatch(entry) for entry in value):
            raise ValueError("each entry must be 1 to 200 printable characters without spaces")
        return value

    @field_validator("oidc_scopes")
    @classmethod
    def _scopes(cls, value: str) -> str:
        scopes = value.replace(",", " ").split()
        if "openid" not in scopes:
            raise ValueError('must include "openid" (space-separated: openid email profile)')
        if not all(_CLAIM_VALUE_RE.fullmatch(scope) for scope in scopes):
            raise ValueError("each scope must be printable characters without spaces")
        return " ".join(scopes)

    @model_validator(mode="after")
    def _oidc_complete(self) -> Self:
        client_secret = self.oidc_client_secret is not None or self.oidc_client_secret_file
        if self.oidc_client_secret is not None and self.oidc_client_secret_file:
            raise ValueError(
                "set BURNLINK_OIDC_CLIENT_SECRET or BURNLINK_OIDC_CLIENT_SECRET_FILE, not both"
            )
        if bool(self.oidc_client_id) != bool(client_secret):
            raise ValueError(
                "BURNLINK_OIDC_CLIENT_ID and BURNLINK_OIDC_CLIENT_SECRET (or _FILE) go together"
            )
        if self.oidc_issuer is None:
            if self.oidc_client_id:
                raise ValueError(
                    "BURNLINK_OIDC_ISSUER is required when BURNLINK_OIDC_CLIENT_ID is set"
                )
            return self
        if not self.oidc_client_id:
            raise ValueError(
                "BURNLINK_OIDC_CLIENT_ID and BURNLINK_OIDC_CLIENT_SECRET (or _FILE) are required"
                " when BURNLINK_OIDC_ISSUER is set"
            )
        if self.base_url is not None and not https_or_loopback(self.base_url):
            raise ValueError(
                "BURNLINK_BASE_URL must be https:// when sign-in is configured (http:// only on"
                " a loopback address): the session cookie must not travel in clear"
            )
        if self.session_idle_timeout > self.session_max_age:
            raise ValueError(
                "BURNLINK_SESSION_IDLE_TIMEOUT must not exceed BURNLINK_SESSION_MAX_AGE"
            )
        return self

    @model_validator(mode="after")
    def _ttl_bounds_are_ordered(self) -> Self:
        if not self.min_ttl <= self.default_ttl <= self.max_ttl:
            raise ValueError(
                "BURNLINK_MIN_TTL <= BURNLINK_DEFAULT_TTL <= BURNLINK_MAX_TTL must hold"
            )
        return self

    @model_validator(mode="after")
    def _links_need_a_base_off_loopback(self) -> Self:
        # Without a base the Host header of each request decides the links and the issuer of
        # signed statements: anyone who can reach a public address could pick them.
        if self.base_url is None and not self.allowed_hosts and not is_loopback(self.host):
            raise ValueError(
                "BURNLINK_BASE_URL (or BURNLINK_ALLOWED_HOSTS) is required when BURNLINK_HOST"
                " is not a loopback address: otherwise the Host header of each request decides"
                " the links"
            )
        return self

    @property
    def sign_in(self) -> bool:
        """Whether sign-in (OpenID Connect) is configured."""
        return self.oidc_issuer is not None

    def oidc_secret(self) -> str:
        """The OIDC client secret, from its setting or its file; ``ConfigError`` when the file
        cannot be read or is empty."""
        if self.oidc_client_secret is not None:
            return self.oidc_client_secret.get_secret_value().strip()
        return read_setting_file(
            "BURNLINK_OIDC_CLIENT_SECRET_FILE", self.oidc_client_secret_file or ""
        )

    def public_base(self) -> str | None:
        """``base_url`` without a trailing slash."""
        return self.base_url.rstrip("/") if self.base_url else None

    def limit(
        self,
        name: Literal["create", "reveal", "verify", "failures", "secret_failures", "admin"],
    ) -> Limit | None:
        """The parsed rate limit ``rate_limit_<name>``; ``None`` when off."""
        return Limit.parse(str(getattr(self, f"rate_limit_{name}")))

    def audit_url(self) -> str:
        """Where the audit log lives: ``audit_store``, else beside the store
        (``audit.location``: a SQLite store's log in a file of its own, unless its file
        already holds one; PostgreSQL's or memory's in the store's own database; Redis's in
        ``audit.db`` in ``key_dir``)."""
        if self.audit_store:
            return self.audit_store
        from burnlink.audit.location import default_audit_url

        return default_audit_url(self.store, self.key_dir)

    def masked(self) -> dict[str, object]:
        """Every setting, with secrets masked, for ``burnlink config check``."""
        from burnlink.store import redact_url

        values = self.model_dump()
        values["store"] = redact_url(self.store)
        if self.smtp_url is not None:
            values["smtp_url"] = redact_url(self.smtp_url.get_secret_value())
        if self.audit_store is not None:
            values["audit_store"] = redact_url(self.audit_store)
        if self.alert_url is not None:
            # Chat webhooks carry their token in the path.
            values["alert_url"] = self.alert_url.split("://", 1)[0] + "://***"
        if self.audit_checkpoint_url is not None:
            values["audit_checkpoint_url"] = self.audit_checkpoint_url.split("://", 1)[0] + "://***"
        return values


def https_or_loopback(url: str) -> bool:
    """Whether ``url`` is an absolute https URL, or http on a loopback host, with no query,
    fragment or user info (an issuer, or a base the session cookie may travel to)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        return False
    if any(ch.isspace() for ch in url):
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and is_loopback(host)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from ``overrides``, the environment and the config file (in that order of
    precedence); raise ``ConfigError`` with one line naming each bad value."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            # A team's problems name their own table and key ("[teams.NAME] key: ...").
            where = f"BURNLINK_{name}: " if name and name != "TEAMS" else ""
            # pydantic words a validator's own ValueError "Value error, <it>": keep only <it>.
            message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            problems.append(f"{where}{message}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
