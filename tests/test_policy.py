"""Access rules: policies validated and normalised, and the decisions applied on each reveal."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from burnlink.errors import InvalidInput
from burnlink.models import AccessPolicy
from burnlink.policy import (
    ISO_COUNTRIES,
    MAX_EMAIL_CHARS,
    MAX_NETWORKS,
    MAX_RECIPIENT_CHARS,
    MAX_RECIPIENTS,
    build_policy,
    country_allowed,
    ip_allowed,
    mask_email,
    parse_countries,
    parse_email,
    parse_ip,
    parse_networks,
    parse_recipient,
    parse_recipients,
    recipient_matches,
)

NOT_A_NETWORK = "each entry must be an IP address or CIDR network"
NOT_A_COUNTRY = "each entry must be an ISO 3166 alpha-2 country code"
NOT_AN_EMAIL = "must be one email address, such as name@example.com"
NOT_A_RECIPIENT = "each entry must be an email address, group:NAME or domain:example.com"
NO_GROUP = "a group: entry needs a group name (printable characters)"
NO_DOMAIN = "a domain: entry needs a domain name, such as example.com"


@pytest.mark.parametrize(
    ("value", "network"),
    [
        pytest.param("10.0.0.7/8", "10.0.0.0/8", id="v4-host-bits"),
        pytest.param("2001:db8::7/32", "2001:db8::/32", id="v6-host-bits"),
        pytest.param(" 192.0.2.1 ", "192.0.2.1/32", id="spaces-around-an-address"),
        pytest.param("2001:db8::1", "2001:db8::1/128", id="v6-address"),
    ],
)
def test_parse_networks_normalises_entries(value: str, network: str) -> None:
    """A user who types a host inside a network gets that network, not an error."""
    assert parse_networks([value], field="allowed_ips") == (ipaddress.ip_network(network),)


def test_parse_networks_keeps_the_order_given() -> None:
    networks = parse_networks(["192.0.2.0/24", "10.0.0.0/8"], field="allowed_ips")

    assert [str(n) for n in networks] == ["192.0.2.0/24", "10.0.0.0/8"]


@pytest.mark.parametrize("value", ["", "10.0.0.0/33", "example.com", "10.0.0.1/8/8"])
def test_parse_networks_refuses_a_malformed_entry_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_networks(["10.0.0.1", value], field="trusted_proxies")

    assert (caught.value.field, caught.value.reason) == ("trusted_proxies", NOT_A_NETWORK)


def test_parse_networks_accepts_the_limit_and_refuses_one_more() -> None:
    entries = [f"10.0.0.{n}" for n in range(MAX_NETWORKS + 1)]

    assert len(parse_networks(entries[:MAX_NETWORKS], field="allowed_ips")) == MAX_NETWORKS
    with pytest.raises(InvalidInput) as caught:
        parse_networks(entries, field="allowed_ips")
    assert (caught.value.field, caught.value.reason) == ("allowed_ips", "at most 50 entries")


def test_parse_countries_upper_cases_strips_and_drops_repeats_in_order() -> None:
    assert parse_countries([" de", "fr ", "De", "FR", "xk"], field="allowed_countries") == (
        "DE",
        "FR",
        "XK",
    )


def test_parse_countries_accepts_every_assigned_code_at_once() -> None:
    """The full ISO list (250 codes) is exactly the limit, so it is accepted."""
    codes = sorted(ISO_COUNTRIES)

    assert len(codes) == 250
    assert parse_countries(codes, field="allowed_countries") == tuple(codes)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("XX", id="user-assigned"),
        pytest.param("ZZ", id="unassigned"),
        pytest.param("DEU", id="alpha-3"),
        pytest.param("", id="empty"),
        pytest.param("D E", id="inner-space"),
    ],
)
def test_parse_countries_refuses_an_unassigned_code_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_countries(["DE", value], field="denied_countries")

    assert (caught.value.field, caught.value.reason) == ("denied_countries", NOT_A_COUNTRY)


def test_build_policy_without_rules_is_empty() -> None:
    assert build_policy() == AccessPolicy()


def test_build_policy_normalises_every_list() -> None:
    policy = build_policy(
        allowed_ips=["10.0.0.7/8", "2001:db8::1"],
        allowed_countries=["de", "DE"],
        denied_countries=[" fr"],
    )

    assert policy == AccessPolicy(
        allowed_ips=("10.0.0.0/8", "2001:db8::1/128"),
        allowed_countries=("DE",),
        denied_countries=("FR",),
    )


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        pytest.param({"allowed_ips": ["nope"]}, "allowed_ips", NOT_A_NETWORK, id="allowed-ips"),
        pytest.param(
            {"allowed_countries": ["ZZ"]}, "allowed_countries", NOT_A_COUNTRY, id="allowed"
        ),
        pytest.param({"denied_countries": ["ZZ"]}, "denied_countries", NOT_A_COUNTRY, id="denied"),
        pytest.param(
            {"allowed_countries": ["DE", "FR"], "denied_countries": ["fr"]},
            "denied_countries",
            "must not repeat a country that is allowed",
            id="allowed-and-denied",
        ),
        pytest.param({"recipients": ["bob"]}, "recipients", NOT_A_RECIPIENT, id="recipient"),
        pytest.param(
            {"require_mfa": True},
            "require_mfa",
            "needs at least one entry in recipients",
            id="mfa-without-recipients",
        ),
    ],
)
def test_build_policy_names_the_field_at_fault(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        build_policy(**fields)

    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_build_policy_keeps_the_recipients_and_their_mfa_rule() -> None:
    policy = build_policy(recipients=["Bob@Example.com", "group:ops"], require_mfa=True)

    assert policy == AccessPolicy(recipients=("bob@example.com", "group:ops"), require_mfa=True)


@pytest.mark.parametrize(
    ("value", "entry"),
    [
        pytest.param(" Bob.Smith@Example.COM ", "bob.smith@example.com", id="email-lower-cased"),
        pytest.param("GROUP: Ops Team ", "group:Ops Team", id="group-as-spelt"),
        pytest.param("Domain: Example.ORG. ", "domain:example.org", id="domain-lower-cased"),
        pytest.param("group:" + "g" * 248, "group:" + "g" * 248, id="at-the-length-limit"),
    ],
)
def test_parse_recipient_normalises_each_kind_of_entry(value: str, entry: str) -> None:
    assert parse_recipient(value) == entry


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("bob", NOT_A_RECIPIENT, id="not-an-email"),
        pytest.param("group: ", NO_GROUP, id="group-without-a-name"),
        pytest.param("group:o\tps", NO_GROUP, id="group-not-printable"),
        pytest.param("domain:example", NO_DOMAIN, id="domain-without-a-dot"),
        pytest.param("domain:", NO_DOMAIN, id="domain-without-a-name"),
        pytest.param(
            "group:" + "g" * 249,
            f"each entry must be at most {MAX_RECIPIENT_CHARS} characters",
            id="one-past-the-length-limit",
        ),
    ],
)
def test_parse_recipient_refuses_a_malformed_entry_naming_the_field(
    value: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_recipient(value)
    assert (refused.value.field, refused.value.reason) == ("recipients", reason)
    with pytest.raises(InvalidInput) as refused:
        parse_recipients(["bob@example.com", value], field="team")
    assert (refused.value.field, refused.value.reason) == ("team", reason)


def test_parse_recipients_drops_repeats_in_order_up_to_the_limit() -> None:
    assert parse_recipients(["b@example.com", "group:ops", "B@Example.com", "a@example.com"]) == (
        "b@example.com",
        "group:ops",
        "a@example.com",
    )
    most = [f"user{n}@example.com" for n in range(MAX_RECIPIENTS)]
    assert MAX_RECIPIENTS == 20
    assert parse_recipients([*most, most[0]]) == tuple(most)
    with pytest.raises(InvalidInput) as refused:
        parse_recipients([*most, "one.more@example.com"])
    assert (refused.value.field, refused.value.reason) == ("recipients", "at most 20 entries")


@pytest.mark.parametrize(
    ("email", "groups", "matched"),
    [
        pytest.param("Bob@Example.com", (), "bob@example.com", id="email-any-case"),
        pytest.param("carol@example.com", (), None, id="another-email"),
        pytest.param(None, ("ops",), "group:ops", id="group-without-email"),
        pytest.param("carol@example.com", ("Ops",), None, id="group-case-matters"),
        pytest.param("carol@example.com", ("staff", "ops"), "group:ops", id="one-of-the-groups"),
        pytest.param("dave@EXAMPLE.org", (), "domain:example.org", id="domain-any-case"),
        pytest.param("dave@mail.example.org", (), None, id="not-a-subdomain"),
        pytest.param('"a@b"@example.org', (), "domain:example.org", id="domain-after-the-last-@"),
        pytest.param(None, (), None, id="nothing-to-match"),
        pytest.param("example.org", (), None, id="no-@-no-domain"),
    ],
)
def test_recipient_matches_the_first_entry_the_user_satisfies(
    email: str | None, groups: tuple[str, ...], matched: str | None
) -> None:
    recipients = ("bob@example.com", "group:ops", "domain:example.org")
    assert recipient_matches(recipients, email, groups) == matched


@pytest.mark.parametrize(
    ("ip", "networks", "allowed"),
    [
        pytest.param("203.0.113.9", [], True, id="no-list-allows-anyone"),
        pytest.param(None, [], True, id="no-list-allows-an-unknown-address"),
        pytest.param("10.1.2.3", ["192.0.2.0/24", "10.0.0.0/8"], True, id="in-the-second"),
        pytest.param("10.1.2.3", ["192.0.2.0/24"], False, id="outside"),
        pytest.param("::ffff:10.1.2.3", ["10.0.0.0/8"], True, id="v4-mapped"),
        pytest.param("2001:db8::9", ["2001:db8::/32"], True, id="v6"),
        pytest.param("2001:db9::9", ["2001:db8::/32"], False, id="v6-outside"),
        pytest.param(None, ["0.0.0.0/0"], False, id="unknown-address"),
        pytest.param("not-an-ip", ["0.0.0.0/0"], False, id="malformed-address"),
        pytest.param("10.1.2.3", [ipaddress.ip_network("10.0.0.0/8")], True, id="parsed-networks"),
    ],
)
def test_ip_allowed(
    ip: str | None, networks: list[str | ipaddress.IPv4Network], allowed: bool
) -> None:
    assert ip_allowed(ip, networks) is allowed


@pytest.mark.parametrize(
    ("text", "address"),
    [
        pytest.param("192.0.2.1", ipaddress.IPv4Address("192.0.2.1"), id="v4"),
        pytest.param("::ffff:192.0.2.1", ipaddress.IPv4Address("192.0.2.1"), id="v4-mapped"),
        pytest.param("2001:db8::1", ipaddress.IPv6Address("2001:db8::1"), id="v6"),
        pytest.param("192.0.2.256", None, id="malformed"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_parse_ip(
    text: str | None, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
) -> None:
    assert parse_ip(text) == address


@pytest.mark.parametrize(
    ("country", "allowed", "denied", "result"),
    [
        pytest.param("DE", [], [], True, id="no-lists"),
        pytest.param(None, [], [], True, id="no-lists-unknown-country"),
        pytest.param("DE", ["FR", "DE"], [], True, id="allowed"),
        pytest.param("US", ["FR", "DE"], [], False, id="not-allowed"),
        pytest.param(None, ["DE"], [], False, id="allow-list-refuses-unknown"),
        pytest.param("DE", [], ["FR", "DE"], False, id="denied"),
        pytest.param("US", [], ["DE"], True, id="not-denied"),
        pytest.param(None, [], ["DE"], True, id="deny-list-admits-unknown"),
        pytest.param("DE", ["DE"], ["FR"], True, id="allowed-and-not-denied"),
    ],
)
def test_country_allowed(
    country: str | None, allowed: list[str], denied: list[str], result: bool
) -> None:
    assert country_allowed(country, iter(allowed), iter(denied)) is result


def _address_of(length: int) -> str:
    """A valid address of exactly ``length`` characters (a 64-character local part, the most
    RFC 5321 allows, and labels of at most 63)."""
    local = "a" * 64
    labels = ["b" * 63, "c" * 63]
    rest = length - len(local) - 1 - sum(len(label) + 1 for label in labels) - len("com")
    labels.append("d" * (rest - 1))
    address = f"{local}@{'.'.join(labels)}.com"
    assert len(address) == length
    return address


def test_parse_email_takes_an_address_of_the_length_limit_and_not_one_more() -> None:
    longest = _address_of(MAX_EMAIL_CHARS)
    assert MAX_EMAIL_CHARS == 254  # RFC 5321's limit on a forward path, less the brackets
    assert parse_email(f"  {longest} ") == longest
    with pytest.raises(InvalidInput) as refused:
        parse_email(_address_of(MAX_EMAIL_CHARS + 1))
    # Our own refusal, before email-validator's: the same clear message as any bad address.
    assert (refused.value.field, refused.value.reason) == ("recipient_email", NOT_AN_EMAIL)


@pytest.mark.parametrize(
    "value",
    ["", "bob", "bob@", "@example.com", "a,b@example.com", "Bob <bob@example.com>", "a@b@c.com"],
)
def test_parse_email_names_the_field_and_says_what_is_wanted(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_email(value)
    assert (refused.value.field, refused.value.reason) == ("recipient_email", NOT_AN_EMAIL)
    with pytest.raises(InvalidInput) as refused:
        parse_email(value, field="to")
    assert (refused.value.field, refused.value.reason) == ("to", NOT_AN_EMAIL)


def test_parse_email_passes_on_email_validators_reason() -> None:
    # The shape is right but a label is longer than DNS allows: email-validator says why.
    with pytest.raises(InvalidInput) as refused:
        parse_email(f"bob@{'x' * 64}.com", field="to")
    assert refused.value.field == "to"
    assert refused.value.reason.startswith("must be one email address: ")
    assert "too many" in refused.value.reason


def test_parse_email_lower_cases_the_domain_only() -> None:
    assert parse_email("Bob.Smith@Example.COM") == "Bob.Smith@example.com"


@pytest.mark.parametrize(
    ("address", "hint"),
    [("bob@example.com", "b***@example.com"), ("x@mail.example.org", "x***@mail.example.org")],
)
def test_mask_email_shows_the_first_letter_and_the_domain(address: str, hint: str) -> None:
    assert mask_email(address) == hint
