"""Parsing server addresses, secret links and manage links."""

from __future__ import annotations

import pytest

from burnlink.cli.links import parse_manage_link, parse_secret_link, parse_server, secret_link
from burnlink.errors import InvalidInput
from burnlink.ids import b64url_encode

SECRET_ID = "Qm9vb3Jvb3Jvb3Jvb3Jvbw"
KEY = bytes(range(32))
ENCODED = b64url_encode(KEY)


@pytest.mark.parametrize(
    ("link", "base"),
    [
        pytest.param(f"https://x.example/s/{SECRET_ID}#{ENCODED}", "https://x.example", id="plain"),
        pytest.param(
            f"https://x.example/burn/s/{SECRET_ID}#{ENCODED}", "https://x.example/burn", id="prefix"
        ),
        pytest.param(
            f"http://127.0.0.1:8000/a/b/s/{SECRET_ID}/#{ENCODED}",
            "http://127.0.0.1:8000/a/b",
            id="deep-prefix-trailing-slash",
        ),
        pytest.param(
            f"  https://x.example/s/{SECRET_ID}#{ENCODED}\n", "https://x.example", id="ws"
        ),
        pytest.param(
            f"https://x.example/s/team/s/{SECRET_ID}#{ENCODED}",
            "https://x.example/s/team",
            id="base-path-holds-s",
        ),
        pytest.param(
            f"https://x.example/s/{'A' * 22}/s/{SECRET_ID}#{ENCODED}",
            f"https://x.example/s/{'A' * 22}",
            id="base-path-holds-s-and-an-id-shaped-segment",
        ),
        pytest.param(
            f"https://x.example/s/s/{SECRET_ID}#{ENCODED}", "https://x.example/s", id="base-is-s"
        ),
    ],
)
def test_parse_secret_link_finds_base_id_and_key(link: str, base: str) -> None:
    parsed = parse_secret_link(link)

    assert (parsed.base, parsed.secret_id, parsed.token) == (base, SECRET_ID, KEY)


def test_parse_secret_link_takes_the_key_from_the_option() -> None:
    parsed = parse_secret_link(f"https://x.example/s/{SECRET_ID}", key=ENCODED)

    assert parsed.token == KEY


def test_parse_secret_link_refuses_a_key_option_that_differs() -> None:
    other = b64url_encode(bytes(32))

    with pytest.raises(InvalidInput) as caught:
        parse_secret_link(f"https://x.example/s/{SECRET_ID}#{ENCODED}", key=other)

    assert caught.value.field == "--key"


def test_parse_manage_link_finds_the_token() -> None:
    parsed = parse_manage_link(f"https://x.example/burn/m/{SECRET_ID}#{ENCODED}")

    assert (parsed.base, parsed.secret_id, parsed.token) == (
        "https://x.example/burn",
        SECRET_ID,
        KEY,
    )


def test_parse_links_name_the_other_kind_of_link() -> None:
    with pytest.raises(InvalidInput, match="manage link"):
        parse_secret_link(f"https://x.example/m/{SECRET_ID}#{ENCODED}")
    with pytest.raises(InvalidInput, match="secret link"):
        parse_manage_link(f"https://x.example/s/{SECRET_ID}#{ENCODED}")


@pytest.mark.parametrize(
    "link",
    [
        pytest.param(f"https://x.example/s/{SECRET_ID}#{ENCODED}x", id="long-key"),
        pytest.param(f"https://x.example/s/{SECRET_ID}#{ENCODED[:-1]}=", id="padded-key"),
        pytest.param(f"https://x.example/s/{SECRET_ID}?k={ENCODED}#{ENCODED}", id="query"),
        pytest.param(f"https://x.example/s/{SECRET_ID}x#{ENCODED}", id="bad-id"),
        pytest.param(f"https://x.example:99999/s/{SECRET_ID}#{ENCODED}", id="bad-port"),
        pytest.param(f"javascript://x.example/s/{SECRET_ID}#{ENCODED}", id="scheme"),
        pytest.param(f"https:///s/{SECRET_ID}#{ENCODED}", id="no-host"),
    ],
)
def test_parse_secret_link_errors_never_repeat_the_key(link: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_secret_link(link)

    assert ENCODED[:20] not in str(caught.value)


def test_secret_link_round_trips_through_parse() -> None:
    link = secret_link(f"https://x.example/burn/s/{SECRET_ID}", KEY)

    assert link == f"https://x.example/burn/s/{SECRET_ID}#{ENCODED}"
    assert parse_secret_link(link).token == KEY


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://x.example/burn/", "https://x.example/burn"),
    ],
)
def test_parse_server_drops_the_trailing_slash(url: str, base: str) -> None:
    assert parse_server(url) == base


@pytest.mark.parametrize(
    "url", ["x.example", "ftp://x.example", "https://x.example/?a=1", "https://u:p@x.example"]
)
def test_parse_server_refuses_what_is_not_a_base_url(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_server(url)

    assert caught.value.field == "--server"
