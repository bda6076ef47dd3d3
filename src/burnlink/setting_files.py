"""Secret settings given as files: ``BURNLINK_<NAME>_FILE=/run/secrets/name`` in place of
``BURNLINK_<NAME>``, as Docker and Kubernetes secrets are mounted.

``FILE_SETTINGS`` lists the settings that may come from a file: every key, token and
password, and every URL that can hold one. The file is read once, when the settings are
loaded; whitespace around its content (the newline an editor or ``echo`` leaves) is dropped.
A setting given both ways, a file that cannot be read, is empty, is larger than
``MAX_FILE_BYTES`` or is not UTF-8 is a ``ConfigError`` that names the variable and the path,
never the content. The file's value stands where the variable's would: it wins over the
config file (``BURNLINK_CONFIG``) and loses to ``burnlink serve``'s flags.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from burnlink.errors import ConfigError

__all__ = ["FILE_SETTINGS", "MAX_FILE_BYTES", "SettingFiles", "read_setting_file"]

FILE_SETTINGS: Final = (
    "store",
    "audit_store",
    "smtp_url",
    "audit_key",
    "signing_key",
    "admin_token",
    "metrics_token",
    "webhook_secret",
    "alert_url",
    "audit_checkpoint_url",
    "slack_signing_secret",
)
"""Settings that ``BURNLINK_<NAME>_FILE`` may give (``BURNLINK_OIDC_CLIENT_SECRET_FILE`` is a
setting of its own, read the same way)."""

MAX_FILE_BYTES: Final = 65536
"""Largest setting file: far above any key, token or URL, far below a mistaken path to a
log or a disk image."""

_PREFIX: Final = "BURNLINK_"


def read_setting_file(variable: str, path: str) -> str:
    """The content of the file ``variable`` names, stripped; ``ConfigError`` naming both when
    it cannot be used."""
    file = Path(path).expanduser()
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {file} ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{variable}: {file} is larger than {MAX_FILE_BYTES} bytes")
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}: {file} is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"{variable}: {file} is empty")
    return value


class SettingFiles(PydanticBaseSettingsSource):
    """The settings source of ``BURNLINK_<NAME>_FILE`` variables, for ``FILE_SETTINGS``."""

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        # Variable names are matched ignoring case, as pydantic-settings matches BURNLINK_*.
        source = os.environ if environ is None else environ
        self._environ = {name.upper(): value for name, value in source.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: ``__call__`` reads every file setting at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in FILE_SETTINGS:
            variable = f"{_PREFIX}{name.upper()}"
            path = self._environ.get(f"{variable}_FILE")
            if path is None:
                continue
            if variable in self._environ:
                raise ConfigError(f"set {variable} or {variable}_FILE, not both")
            if not path.strip():
                raise ConfigError(f"{variable}_FILE: is empty (a path to a file)")
            values[name] = read_setting_file(f"{variable}_FILE", path)
        return values
