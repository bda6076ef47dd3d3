"""JSON parsing that refuses repeated names, and the compact encoding stores keep."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from burnlink.strict_json import DuplicateName, dumps_compact, loads_strict

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(_JSON)
def test_compact_encoding_is_json_dumps_with_compact_separators(value: object) -> None:
    for ascii in (True, False):
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=ascii)
        assert dumps_compact(value, ascii=ascii) == expected.encode("utf-8", "surrogatepass")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.text() | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none(),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_compact_encoding_of_floats_and_other_keys_is_json_dumps_too(value: object) -> None:
    # msgspec, which writes the plain values, writes 1e16 where json writes 1e+16.
    for ascii in (True, False):
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=ascii)
        assert dumps_compact(value, ascii=ascii) == expected.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"n": 1e16, "s": "a"}, b'{"n":1e+16,"s":"a"}'),
        (["\x7f"], b'["\\u007f"]'),
        ({"name": "caf\u00e9"}, b'{"name":"caf\\u00e9"}'),
        ({1: [True, None]}, b'{"1":[true,null]}'),
        ({1e16: "a", 2.5: "b"}, b'{"1e+16":"a","2.5":"b"}'),  # msgspec writes "1e16"
        ({True: 1, None: 2}, b'{"true":1,"null":2}'),
    ],
)
def test_compact_encoding_escapes_as_json_does(value: object, expected: bytes) -> None:
    assert dumps_compact(value) == expected


@given(_JSON)
def test_strict_parsing_reads_what_json_loads_reads(value: object) -> None:
    text = json.dumps(value)
    assert loads_strict(text) == json.loads(text)
    for encoding in ("utf-8", "utf-16", "utf-32-be"):
        data = json.dumps(value, ensure_ascii=True).encode(encoding)
        assert loads_strict(data) == json.loads(data)


@pytest.mark.parametrize(
    "document",
    [
        b'{"max_views": 1, "max_views": 50}',
        '{"a": {"key": "x", "key": "y"}}'.encode("utf-16"),
        '[{"a": 1}, {"b": 1, "b": 1}]',
    ],
)
def test_a_repeated_name_is_refused_at_any_depth_in_any_encoding(document: str | bytes) -> None:
    with pytest.raises(DuplicateName):
        loads_strict(document)
