"""Settings: read once from ``BURNLINK_*`` environment variables into a frozen, validated object.

Every field is documented in docs/configuration.md (a test keeps the two in step). Nothing
else in burnlink reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from platformdirs import user_data_dir
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from burnlink.envelope import MAX_ITERATIONS, MIN_ITERATIONS
from burnlink.errors import ConfigError


def default_store_url() -> str:
    """The embedded default: a SQLite file in the user's data directory."""
    return f"sqlite://{Path(user_data_dir('burnlink')) / 'burnlink.db'}"


class Settings(BaseSettings):
    """burnlink's configuration. Build it with ``load_settings``."""

    model_config = SettingsConfigDict(env_prefix="BURNLINK_", frozen=True, extra="forbid")

    store: str = Field(default_factory=default_store_url, min_length=1)
    """Store URL: ``sqlite:///path``, ``redis://…``, ``postgresql://…`` or ``memory://``."""
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    """Public base of links (``https://secrets.example.com``); else taken from each request."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
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

    @model_validator(mode="after")
    def _ttl_bounds_are_ordered(self) -> Self:
        if not self.min_ttl <= self.default_ttl <= self.max_ttl:
            raise ValueError(
                "BURNLINK_MIN_TTL <= BURNLINK_DEFAULT_TTL <= BURNLINK_MAX_TTL must hold"
            )
        return self

    def public_base(self) -> str | None:
        """``base_url`` without a trailing slash."""
        return self.base_url.rstrip("/") if self.base_url else None


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus ``overrides``; raise ``ConfigError`` if invalid."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            where = f"BURNLINK_{name}: " if name else ""
            problems.append(f"{where}{error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
