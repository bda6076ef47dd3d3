"""The country of an IP address, from an offline database. Nothing here goes online.

By default the data shipped with ``geoip2fast`` (its IPv6 file, which covers IPv4 too);
with ``BURNLINK_GEOIP_DB`` a MaxMind ``.mmdb`` file (GeoLite2/GeoIP2 Country or City).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from burnlink.errors import ConfigError
from burnlink.policy import parse_ip


class CountryResolver(Protocol):
    """Maps an IP address to an ISO 3166 alpha-2 code, or ``None`` when unknown."""

    def country_of(self, ip: str | None) -> str | None: ...


class GeoIP2FastResolver:
    """Countries from the database bundled with ``geoip2fast``, loaded on first use (~0.1 s)."""

    def __init__(self) -> None:
        self._lookup: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._lookup is None:
                import geoip2fast
                from geoip2fast import GeoIP2Fast

                # The IPv6 data file holds both families; the default file holds IPv4 only.
                data = Path(geoip2fast.__file__).parent / "geoip2fast-ipv6.dat.gz"
                self._lookup = GeoIP2Fast(geoip2fast_data_file=str(data))
            return self._lookup

    def country_of(self, ip: str | None) -> str | None:
        """See ``CountryResolver``."""
        address = parse_ip(ip)
        if address is None or not address.is_global:
            return None
        code = str(self._load().lookup(str(address)).country_code or "")
        return code if len(code) == 2 and code.isalpha() else None


class MaxMindResolver:
    """Countries from a MaxMind ``.mmdb`` file."""

    def __init__(self, path: str) -> None:
        import maxminddb

        try:
            self._reader = maxminddb.open_database(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"BURNLINK_GEOIP_DB: cannot open {path}: {exc}") from None

    def country_of(self, ip: str | None) -> str | None:
        """See ``CountryResolver``."""
        address = parse_ip(ip)
        if address is None:
            return None
        record = self._reader.get(str(address))
        if not isinstance(record, dict):
            return None
        for key in ("country", "registered_country"):
            entry = record.get(key)
            if isinstance(entry, dict) and isinstance(entry.get("iso_code"), str):
                return str(entry["iso_code"])
        return None


def open_resolver(mmdb_path: str | None) -> CountryResolver:
    """The configured resolver."""
    return MaxMindResolver(mmdb_path) if mmdb_path else GeoIP2FastResolver()
