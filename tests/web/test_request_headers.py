"""``web.request_headers.header`` answers as Starlette's ``Headers.get`` would, from one index per
request."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from burnlink.web.request_headers import header

NAMES = st.sampled_from([b"host", b"user-agent", b"content-length", b"x-request-id", b"x-a"])
VALUES = st.binary(max_size=20)


@given(fields=st.lists(st.tuples(NAMES, VALUES), max_size=8), asked=NAMES)
def test_a_field_reads_as_starlette_reads_it_first_of_its_name_first(
    fields: list[tuple[bytes, bytes]], asked: bytes
) -> None:
    scope = {"type": "http", "headers": fields}

    assert header(scope, asked) == Headers(scope=scope).get(asked.decode())
    assert header(scope, asked) == Headers(scope=scope).get(asked.decode())  # indexed now


def test_the_index_is_the_requests_own() -> None:
    first = {"type": "http", "headers": [(b"user-agent", b"curl/8.5.0")]}
    second = {"type": "http", "headers": [(b"user-agent", b"Mozilla/5.0 \xe9")]}

    assert header(first, b"user-agent") == "curl/8.5.0"
    assert header(second, b"user-agent") == "Mozilla/5.0 é"
    assert header(second, b"accept-language") is None
