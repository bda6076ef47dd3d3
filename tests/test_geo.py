"""Country lookups from the bundled geoip2fast data (both families) and a MaxMind file."""

from __future__ import annotations

from pathlib import Path

import pytest

from burnlink.errors import ConfigError
from burnlink.geo import GeoIP2FastResolver, MaxMindResolver, open_resolver


@pytest.fixture(scope="module")
def bundled() -> GeoIP2FastResolver:
    return GeoIP2FastResolver()


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        pytest.param("8.8.8.8", "US", id="v4-us"),
        pytest.param("81.2.69.160", "GB", id="v4-gb"),
        pytest.param("85.214.132.117", "DE", id="v4-de"),
        pytest.param("2001:4860:4860::8888", "US", id="v6-us"),
        pytest.param("2a00:1450:4001:80b::200e", "DE", id="v6-de"),
        pytest.param("::ffff:8.8.8.8", "US", id="v4-mapped"),
    ],
)
def test_bundled_data_knows_both_families(
    bundled: GeoIP2FastResolver, ip: str, country: str
) -> None:
    assert bundled.country_of(ip) == country


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "::1", "fd00::1", "nonsense", None])
def test_private_and_invalid_addresses_have_no_country(
    bundled: GeoIP2FastResolver, ip: str | None
) -> None:
    assert bundled.country_of(ip) is None


def test_maxmind_file_is_used_when_configured(tmp_path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country")
    writer.insert_network(IPSet(["198.51.100.0/24"]), {"country": {"iso_code": "NZ"}})
    writer.insert_network(IPSet(["2001:db8::/32"]), {"registered_country": {"iso_code": "JP"}})
    path = tmp_path / "test.mmdb"
    writer.to_db_file(str(path))

    resolver = open_resolver(str(path))

    assert resolver.country_of("198.51.100.7") == "NZ"
    assert resolver.country_of("2001:db8::1") == "JP"
    assert resolver.country_of("8.8.8.8") is None


def test_missing_maxmind_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BURNLINK_GEOIP_DB"):
        MaxMindResolver(str(tmp_path / "missing.mmdb"))
