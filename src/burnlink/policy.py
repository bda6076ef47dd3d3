"""Access rules: validating a secret's policy, and the pure decisions applied on each reveal.

Nothing here does I/O: the country of an address comes from ``burnlink.geo`` and is passed in.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Final

from email_validator import EmailNotValidError, validate_email

from burnlink.errors import InvalidInput
from burnlink.models import AccessPolicy

MAX_NETWORKS = 50
MAX_COUNTRIES = 250
MAX_EMAIL_CHARS = 254
MAX_RECIPIENTS = 20
MAX_RECIPIENT_CHARS = 254
GROUP_PREFIX: Final = "group:"
DOMAIN_PREFIX: Final = "domain:"
_DOMAIN_RE = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)

# ISO 3166-1 alpha-2 codes officially assigned (2024), plus XK (Kosovo), which GeoIP data uses.
_ISO_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW XK
"""
ISO_COUNTRIES = frozenset(_ISO_CODES.split())

# One bare addr-spec (RFC 5322 dot-atom local part, a dotted ASCII domain): no display name,
# quotes, comments or lists, so no value can name a second recipient ("a,b@example.com" once
# mailed two). ``email-validator`` then checks the rest (label and length rules, reserved
# domains); deliverability is proven by the code reaching the inbox, not by DNS.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
EMAIL_PATTERN: Final = rf"^{_ATEXT}+(\.{_ATEXT}+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
"""The shape of an address ``parse_email`` takes (after stripping spaces); also in the API's
JSON schema."""
_EMAIL_RE = re.compile(EMAIL_PATTERN)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str], *, field: str) -> tuple[IpNetwork, ...]:
    """Parse IPs and CIDRs (IPv4 and IPv6); host bits are dropped (``10.0.0.7/8`` is 10/8)."""
    networks = []
    for value in values:
        try:
            networks.append(
                ipaddress.ip_network(
                    value.strip(),
                    strict=False,  # pragma: no mutate - None is as false: host bits are dropped
                )
            )
        except ValueError:
            raise InvalidInput(field, "each entry must be an IP address or CIDR network") from None
    if len(networks) > MAX_NETWORKS:
        raise InvalidInput(field, f"at most {MAX_NETWORKS} entries")
    return tuple(networks)


def parse_countries(values: Iterable[str], *, field: str) -> tuple[str, ...]:
    """Upper-case, de-duplicate and check ISO 3166 alpha-2 codes."""
    codes = []
    for value in values:
        code = value.strip().upper()
        if code not in ISO_COUNTRIES:
            raise InvalidInput(field, "each entry must be an ISO 3166 alpha-2 country code")
        if code not in codes:
            codes.append(code)
    if len(codes) > MAX_COUNTRIES:  # pragma: no cover - the ISO list is not longer
        # Unreachable, so no change to this line can be seen.
        raise InvalidInput(field, f"at most {MAX_COUNTRIES} entries")  # pragma: no mutate
    return tuple(codes)


def parse_email(value: str, *, field: str = "recipient_email") -> str:
    """Exactly one address (a bare ``local@domain``), its domain lower-cased; else
    ``InvalidInput`` saying what is wrong."""
    value = value.strip()
    if len(value) > MAX_EMAIL_CHARS or not _EMAIL_RE.fullmatch(value):
        raise InvalidInput(field, "must be one email address, such as name@example.com")
    try:
        checked = validate_email(
            value,
            check_deliverability=False,  # no DNS on a request; the mailed code proves delivery
            # EMAIL_PATTERN has already refused what these four would allow (non-ASCII, quotes,
            # "[...]" domains, "Name <...>"), so changing them changes nothing today: they stay
            # to fail closed should the pattern ever be loosened. Hence no mutants.
            allow_smtputf8=False,  # pragma: no mutate
            allow_quoted_local=False,  # pragma: no mutate
            allow_domain_literal=False,  # pragma: no mutate
            allow_display_name=False,  # pragma: no mutate
        )
    except EmailNotValidError as exc:
        raise InvalidInput(field, f"must be one email address: {exc}") from None
    return checked.normalized


def parse_recipient(value: str, *, field: str = "recipients") -> str:
    """One recipient entry, normalised: ``user@example.com`` (lower-cased), ``group:NAME``
    (the name as the provider spells it, spaces around it dropped) or ``domain:example.com``
    (lower-cased); else ``InvalidInput`` naming ``field``."""
    value = value.strip()
    if len(value) > MAX_RECIPIENT_CHARS:
        raise InvalidInput(field, f"each entry must be at most {MAX_RECIPIENT_CHARS} characters")
    if value.lower().startswith(GROUP_PREFIX):
        name = value[len(GROUP_PREFIX) :].strip()
        if not name or not name.isprintable():
            raise InvalidInput(field, "a group: entry needs a group name (printable characters)")
        return GROUP_PREFIX + name
    if value.lower().startswith(DOMAIN_PREFIX):
        domain = value[len(DOMAIN_PREFIX) :].strip().lower().rstrip(".")
        if not _DOMAIN_RE.fullmatch(domain):
            raise InvalidInput(field, "a domain: entry needs a domain name, such as example.com")
        return DOMAIN_PREFIX + domain
    try:
        return parse_email(value, field=field).lower()
    except InvalidInput:
        raise InvalidInput(
            field, "each entry must be an email address, group:NAME or domain:example.com"
        ) from None


def parse_recipients(values: Iterable[str], *, field: str = "recipients") -> tuple[str, ...]:
    """Normalise and de-duplicate recipient entries (at most ``MAX_RECIPIENTS``)."""
    entries: list[str] = []
    for value in values:
        entry = parse_recipient(value, field=field)
        if entry not in entries:
            entries.append(entry)
        if len(entries) > MAX_RECIPIENTS:
            raise InvalidInput(field, f"at most {MAX_RECIPIENTS} entries")
    return tuple(entries)


def recipient_matches(
    recipients: Iterable[str], email: str | None, groups: Iterable[str]
) -> str | None:
    """The first entry of ``recipients`` that a user with the verified ``email`` and ``groups``
    satisfies, or ``None``. Emails and domains compare case-insensitively (a ``domain:``
    entry matches that exact domain, not its subdomains); groups exactly."""
    address = email.lower() if email else None
    domain = address.rsplit("@", 1)[-1] if address and "@" in address else None
    member = set(groups)
    for entry in recipients:
        if entry.startswith(GROUP_PREFIX):
            if entry[len(GROUP_PREFIX) :] in member:
                return entry
        elif entry.startswith(DOMAIN_PREFIX):
            if domain is not None and entry[len(DOMAIN_PREFIX) :] == domain:
                return entry
        elif address is not None and entry == address:
            return entry
    return None


def build_policy(
    *,
    allowed_ips: Iterable[str] = (),
    allowed_countries: Iterable[str] = (),
    denied_countries: Iterable[str] = (),
    recipient_email: str | None = None,
    recipients: Iterable[str] = (),
    require_mfa: bool = False,
) -> AccessPolicy:
    """A validated, normalised policy from request fields; raises ``InvalidInput`` naming one."""
    allowed = parse_countries(allowed_countries, field="allowed_countries")
    denied = parse_countries(denied_countries, field="denied_countries")
    if set(allowed) & set(denied):
        raise InvalidInput("denied_countries", "must not repeat a country that is allowed")
    bound = parse_recipients(recipients)
    if require_mfa and not bound:
        raise InvalidInput("require_mfa", "needs at least one entry in recipients")
    return AccessPolicy(
        allowed_ips=tuple(str(n) for n in parse_networks(allowed_ips, field="allowed_ips")),
        allowed_countries=allowed,
        denied_countries=denied,
        recipient_email=parse_email(recipient_email) if recipient_email is not None else None,
        recipients=bound,
        require_mfa=require_mfa,
    )


def ip_allowed(ip: str | None, networks: Iterable[IpNetwork | str]) -> bool:
    """Whether ``ip`` lies in one of ``networks``; an empty list allows everyone.

    An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) is matched as the IPv4 address.
    """
    nets = [_network(n) for n in networks]
    if not nets:
        return True
    address = parse_ip(ip)
    return address is not None and any(address in net for net in nets)


@functools.lru_cache(maxsize=1024)
def _network(value: IpNetwork | str) -> IpNetwork:
    return ipaddress.ip_network(value)


# Every request parses its client's address several times (rate limits, rules, country):
# remember the latest few thousand.
@functools.lru_cache(maxsize=4096)
def parse_ip(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``ip`` names (IPv4-mapped IPv6 unwrapped), or ``None``."""
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def country_allowed(country: str | None, allowed: Iterable[str], denied: Iterable[str]) -> bool:
    """Whether a reveal from ``country`` passes both lists.

    With an allow-list, an unknown country is refused; a deny-list refuses only what it names.
    """
    allowed = tuple(allowed)
    if allowed and country not in allowed:
        return False
    return country is None or country not in tuple(denied)


def mask_email(address: str) -> str:
    """A hint that names the inbox without spelling it out: ``b***@example.com``."""
    # The address passed parse_email, whose EMAIL_PATTERN allows exactly one "@": split and
    # rsplit (or a maxsplit of 2) then give the same two parts, so those mutants are equivalent.
    local, domain = address.rsplit("@", 1)  # pragma: no mutate
    return f"{local[0]}***@{domain}"
