"""orjson makes the canonical bytes and the export lines only where they are byte for
byte what the standard library's encoder made before (the chain's hashes and every
signature are over those bytes); for anything else the old encoder runs and gives the
same bytes, or raises the same error. Hypothesis compares both on generated values:
unicode (astral, control characters, U+2028, lone surrogates), integers of every size,
floats, NaN, nested dicts and lists, tuples, key order."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voucherledger.ledger.canonical import PLAIN_DEPTH, canonical_json, json_plain
from voucherledger.ledger.export import jsonl_bytes


def old_canonical(obj: Any) -> bytes:
    """The encoder before orjson: what every existing hash and signature covers."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def outcome(encode: Any, obj: Any) -> tuple[str, Any]:
    try:
        return ("bytes", encode(obj))
    except Exception as exc:  # the same failure, whatever it is
        return ("error", type(exc))


# Characters the encoders treat differently, if any do: controls (escaped as \\uXXXX or
# \\n), quote and backslash, DEL, U+0085/U+2028/U+2029, the BMP's last, astral ones.
EDGY = st.sampled_from(
    [
        "\x00",
        "\x1f",
        "\x7f",
        '"',
        "\\",
        "/",
        "\n",
        "\t",
        "\x85",
        "\u2028",
        "\u2029",
        "\ufeff",
        "\uffff",
        "😀",
        "\U0010ffff",
        "é",
        "\xa0",
    ]
)
VALID_CHARS = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    EDGY,
    st.characters(min_codepoint=0x10000, exclude_categories=["Cs"]),
)
# With lone surrogates too (a value UTF-8 cannot encode: both must raise).
ANY_CHARS = st.one_of(VALID_CHARS, st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
BOUNDARIES = st.sampled_from(
    [
        0,
        -1,
        2**53 - 1,
        -(2**53 - 1),
        2**53,
        2**63 - 1,
        -(2**63 - 1),
        2**63,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**64),
        10**30,
        -(10**30),
    ]
)
INTS = st.one_of(st.integers(), BOUNDARIES)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


def values(chars: st.SearchStrategy[str], *, floats: bool) -> st.SearchStrategy[Any]:
    scalars: list[st.SearchStrategy[Any]] = [
        st.none(),
        st.booleans(),
        INTS,
        st.text(chars, max_size=12),
    ]
    if floats:
        scalars.append(FLOATS)
    keys = st.text(chars, max_size=6)
    return st.recursive(
        st.one_of(scalars),
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(keys, inner, max_size=6),
        ),
        max_leaves=30,
    )


@given(values(ANY_CHARS, floats=True))
def test_canonical_json_is_the_old_encoder_on_anything(obj: Any) -> None:
    assert outcome(canonical_json, obj) == outcome(old_canonical, obj)


# What the ledger stores: text without lone surrogates, integers of any size, no floats.
@given(values(VALID_CHARS, floats=False))
def test_orjson_itself_matches_where_the_value_is_plain(obj: Any) -> None:
    """Not only through the fallback: where json_plain says yes, orjson's own bytes
    are the old encoder's."""
    if json_plain(obj):
        assert orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) == old_canonical(obj)
    assert canonical_json(obj) == old_canonical(obj)


@given(st.dictionaries(st.text(VALID_CHARS, max_size=8), st.integers(0, 9), max_size=12))
def test_keys_sort_by_code_point(obj: dict[str, int]) -> None:
    """orjson sorts by UTF-8 bytes, json by code points: the same order for text
    without surrogates (UTF-8 keeps code point order)."""
    assert canonical_json(obj) == old_canonical(obj)


@pytest.mark.parametrize(
    "obj",
    [
        1.5,
        {"a": 0.1},
        [float("nan")],
        {"x": float("inf")},
        2**64,
        -(2**63),
        2**63,
        {"big": 10**40},
        True,
        {"a": [True, False, None]},
        "\ud800",
        {"\udfff": 1},
        [[[]]] * 2,
    ],
)
def test_values_outside_the_plain_set_fall_back(obj: Any) -> None:
    """Floats (orjson writes NaN as null, json refuses it), integers at or past 2**63
    (orjson refuses past 2**64), lone surrogates: the old encoder decides."""
    assert outcome(canonical_json, obj) == outcome(old_canonical, obj)


def test_what_is_not_plain() -> None:
    assert json_plain({"a": [1, "b", None, True, (2,)]})
    assert not json_plain({"a": 1.0})
    assert not json_plain(2**63)
    assert not json_plain({1: "a"})  # json writes "1", orjson refuses int keys
    assert not json_plain(type("S", (str,), {})("x"))  # subclasses: the old encoder
    deep: Any = []
    for _ in range(PLAIN_DEPTH + 5):
        deep = [deep]
    assert not json_plain(deep)
    assert canonical_json(deep) == old_canonical(deep)  # orjson would refuse past 254


def test_types_orjson_would_write_but_json_refuses() -> None:
    """orjson writes datetimes, UUIDs, dataclasses; the canonical form refuses them
    as it always did (TypeError), and a cycle is still ValueError."""
    from datetime import UTC, datetime
    from uuid import UUID

    for obj in (datetime(2027, 1, 1, tzinfo=UTC), UUID(int=1), {"a": b"x"}):
        assert outcome(canonical_json, obj) == ("error", TypeError)
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    assert outcome(canonical_json, cycle) == ("error", ValueError)


def old_jsonl(lines: list[dict[str, Any]]) -> bytes:
    """The export's lines as they were written before orjson."""
    text = "".join(
        json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n" for line in lines
    )
    for char, escaped in (("\x85", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text.encode()


@given(
    st.lists(
        st.dictionaries(
            st.text(VALID_CHARS, max_size=6), values(VALID_CHARS, floats=True), max_size=5
        ),
        max_size=6,
    )
)
def test_export_lines_are_the_old_bytes(lines: list[dict[str, Any]]) -> None:
    """Insertion order kept (no sorting), U+0085/U+2028/U+2029 escaped, NaN still
    written as NaN (the line encoder allows it), floats as json writes them."""
    assert b"".join(jsonl_bytes(iter(lines), flush_at=64)) == old_jsonl(lines)
