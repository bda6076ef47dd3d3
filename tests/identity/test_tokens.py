"""The text form of API tokens: prefix, randomness, checksum, and what a scanner's pattern
matches."""

from __future__ import annotations

import re
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from burnlink.identity.tokens import (
    ALPHABET,
    PATTERN,
    PREFIX,
    TOKEN_CHARS,
    checksum,
    is_api_token,
    is_token_id,
    new_api_token,
    new_token_id,
    parse_token,
)

_BASE62 = st.text(alphabet=ALPHABET, min_size=43, max_size=43)


def test_new_api_token_is_prefixed_fresh_and_parses() -> None:
    tokens = {new_api_token() for _ in range(200)}

    assert len(tokens) == 200
    for token in tokens:
        assert token.startswith(PREFIX)
        assert len(token) == TOKEN_CHARS == 53
        assert parse_token(token) == token.encode("ascii")
        assert re.fullmatch(PATTERN, token)


def test_new_api_token_draws_every_base62_character() -> None:
    seen = set("".join(new_api_token()[4:47] for _ in range(200)))

    assert seen == set(ALPHABET)


@given(_BASE62)
def test_parse_token_accepts_any_random_part_with_its_checksum(random_part: str) -> None:
    token = PREFIX + random_part + checksum(random_part)

    assert parse_token(token) == token.encode("ascii")
    assert re.search(PATTERN, f"export TOKEN={token}\n") is not None


@given(_BASE62, st.integers(min_value=0, max_value=48), st.sampled_from(ALPHABET))
def test_parse_token_refuses_any_one_changed_character(
    random_part: str, position: int, replacement: str
) -> None:
    token = PREFIX + random_part + checksum(random_part)
    index = len(PREFIX) + position
    changed = token[:index] + replacement + token[index + 1 :]

    assert (parse_token(changed) is None) is (changed != token)


@given(st.text(max_size=80))
def test_parse_token_refuses_arbitrary_text(text: str) -> None:
    parsed = parse_token(text)

    assert parsed is None or parsed == text.encode("ascii")


@given(_BASE62)
def test_checksum_is_the_crc32_in_six_base62_digits(random_part: str) -> None:
    value = 0
    for digit in checksum(random_part):
        value = value * 62 + ALPHABET.index(digit)

    assert len(checksum(random_part)) == 6
    assert value == zlib.crc32(random_part.encode("ascii"))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("blk_", id="prefix-only"),
        pytest.param("blk_" + "A" * 49, id="bad-checksum"),
        pytest.param("BLK_" + "A" * 49, id="upper-prefix"),
        pytest.param("ghp_" + "A" * 49, id="other-prefix"),
        pytest.param("blk_" + "A" * 48 + "-", id="not-base62"),
        pytest.param("blk_" + "A" * 50, id="too-long"),
        pytest.param("blk_" + "٣" * 49, id="unicode-digits"),
    ],
)
def test_parse_token_refuses(text: str) -> None:
    assert parse_token(text) is None


def test_pattern_does_not_match_inside_a_longer_word() -> None:
    token = new_api_token()

    assert re.search(PATTERN, token + "x") is None
    assert re.search(PATTERN, "x" + token) is None


def test_is_api_token_looks_at_the_prefix_only() -> None:
    assert is_api_token("blk_anything")
    assert not is_api_token("c29tZS1tYW5hZ2UtdG9rZW4")


def test_new_token_id_is_fresh_and_recognised() -> None:
    ids = {new_token_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(is_token_id(i) for i in ids)
    assert not is_token_id("tok_short")
    assert not is_token_id(new_api_token())
