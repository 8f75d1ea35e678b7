"""The faster verifier gives the verdicts of the one-process standard-library one.

- Parsing: where orjson parses a line (:func:`_fast_value`), the value is the one
  ``parse_line`` gives, with the same types; elsewhere ``parse_line`` decides, so the
  faults are named as before. Hypothesis writes the lines: unicode, escapes (lone
  surrogates too), integers of every size, floats, duplicate keys, white space.
- Several processes (``verify_file(workers=2)``, chunks of a few hundred bytes so a
  small file has many): the same :class:`FileResult` as one process, on a good export
  and on broken ones (a fault sends the file back to one process, which names it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ledger.test_verify_malformed import GOOD, good_export
from voucherledger.ledger.verify import (
    ChainBroken,
    FileResult,
    _fast_value,
    _parse,
    _verify_parallel,
    parse_line,
    verify_file,
)


def typed(value: Any) -> Any:
    """``value`` with each scalar's type beside it (1, 1.0 and True are == in Python)."""
    if isinstance(value, dict):
        return ("dict", [(key, typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


def parsed(parse: Any, text: str) -> Any:
    try:
        return ("value", typed(parse(text)))
    except ChainBroken as exc:
        return ("fault", str(exc))


CHARS = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.sampled_from(["\x00", "\x1f", "\x7f", '"', "\\", "\x85", "\u2028", "\U0001f600", "\ufeff"]),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), 2**64 - 1, 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(CHARS, max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(CHARS, max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def lines(draw: st.DrawFn) -> str:
    """JSON text as the service writes it, or with \\u escapes everywhere
    (``ensure_ascii``: lone surrogates become ``"\\ud800"``), or spaced out, or with a
    duplicate key, or cut short."""
    value = draw(VALUES)
    style = draw(st.sampled_from(["compact", "ascii", "spaced", "duplicate", "cut"]))
    if style == "ascii":
        text = json.dumps(value)
    elif style == "spaced":
        text = " " + json.dumps(value, indent=1, ensure_ascii=False) + " \t"
    elif style == "duplicate":
        text = '{"k":1,"k":' + json.dumps(value, ensure_ascii=False) + ',"k2":[]}'
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if style == "cut":
            text = text[: draw(st.integers(0, len(text)))]
    return text


@given(lines())
def test_fast_parse_is_parse_line(text: str) -> None:
    assert parsed(lambda t: _parse(t)[0], text) == parsed(parse_line, text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1.0}',
        '{"a":18446744073709551616}',
        '{"a":9223372036854775808}',
        '{"a":-9223372036854775809}',
        '{"a":NaN}',
        '{"a":1e400}',
        '"\\ud800"',
        '"\\udc00x"',
        "\ufeff{}",
        "[" * 201 + "]" * 201,
        "null",
    ],
)
def test_where_orjson_does_not_decide(text: str) -> None:
    """Floats, integers at or past 2**63, NaN, infinities, lone surrogates, a BOM,
    deep nesting: parse_line's answer, value or fault."""
    assert _fast_value(text) is None
    assert parsed(lambda t: _parse(t)[0], text) == parsed(parse_line, text)


def _write(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_bytes("".join(line + newline for line in lines).encode("utf-8", "surrogateescape"))
    return path


def both(path: Path, **options: Any) -> tuple[FileResult, FileResult]:
    return (
        verify_file(path, workers=1, **options),
        verify_file(path, workers=2, chunk_bytes=300, **options),
    )


def test_a_good_export_in_two_processes(tmp_path: Path) -> None:
    lines = good_export(count=40, per_block=3, redacted=frozenset({1, 7, 8, 9, 40}))
    path = _write(tmp_path / "good.jsonl", lines)
    one, two = both(path)
    assert one.ok, one
    assert two == one
    result = _verify_parallel(
        path, workers=2, chunk_bytes=300, public_keys=None, checkpoint=None, key_history=None
    )
    assert result == one  # decided in the workers, not by the fallback
    crlf = _write(tmp_path / "crlf.jsonl", lines, "\r\n")
    assert both(crlf) == (one, one)


def _broken(lines: list[str], index: int, change: Any) -> list[str]:
    line = json.loads(lines[index])
    change(line)
    return [*lines[:index], json.dumps(line), *lines[index + 1 :]]


LONG = good_export(count=30, per_block=4, redacted=frozenset({5, 6, 17}))
_MEMO = next(i for i, text in enumerate(LONG) if i > 15 and "Réf" in text)
FAULTS = {
    "memo edited": _broken(LONG, 10, lambda line: line.update(memo="x")),
    "redacted hash edited": _broken(LONG, 6, lambda line: line.update(hash="0" * 64)),
    "line dropped": LONG[:12] + LONG[13:],
    "lines swapped": [*LONG[:8], LONG[9], LONG[8], *LONG[10:]],
    "truncated": LONG[:-1],
    "after the manifest": [*LONG, LONG[3]],
    "not json": [*LONG[:15], "{", *LONG[15:]],
    "not an object": [*LONG[:15], "[1]", *LONG[15:]],
    "a float amount": _broken(
        LONG,
        2,
        lambda line: line["postings"][0].update(amount=float(line["postings"][0]["amount"])),
    ),
    "not UTF-8": [*LONG[:_MEMO], LONG[_MEMO].replace("Réf", "R\udce9f"), *LONG[_MEMO + 1 :]],
    "unknown type": _broken(LONG, 4, lambda line: line.update(type="other")),
    "blank lines": [*LONG[:3], "", "  ", *LONG[3:]],
    # A chunk's worker starts from the hash its first line says it follows: one that is
    # not a hash must send the file back to one process (it crashed the worker), which
    # passes it: a transaction line's prev_hash is not chained, the hash is recomputed.
    "prev_hash not hex": _broken(LONG, 10, lambda line: line.update(prev_hash="zz" * 32)),
    "prev_hash not a hash": _broken(LONG, 10, lambda line: line.update(prev_hash="abc")),
}


GOOD_ANYWAY = {"blank lines", "prev_hash not hex", "prev_hash not a hash"}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_faults_are_named_as_in_one_process(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / "export.jsonl", FAULTS[name])
    one, two = both(path)
    assert two == one
    assert one.ok is (name in GOOD_ANYWAY)


def test_checkpoint_and_keys_in_two_processes(tmp_path: Path) -> None:
    path = _write(tmp_path / "good.jsonl", LONG)
    blocks = [json.loads(text) for text in LONG if json.loads(text)["type"] == "block"]
    point = {"height": blocks[2]["height"], "hash": blocks[2]["hash"]}
    point["public_key"] = blocks[2]["public_key"]
    one, two = both(path, checkpoint=point)
    assert one.ok
    assert two == one
    wrong = {**point, "hash": "1" * 64}
    assert both(path, checkpoint=wrong)[1] == both(path, checkpoint=wrong)[0]
    assert both(path, public_keys=["ab" * 32])[1] == verify_file(path, public_keys=["ab" * 32])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(GOOD) - 1),
            st.sampled_from(["drop", "double", "swap", "byte", "blank"]),
            st.integers(0, 10_000),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_exports_agree(tmp_path: Path, edits: list[tuple[int, str, int]]) -> None:
    lines = list(GOOD)
    for index, edit, at in edits:
        index %= len(lines)
        if edit == "drop":
            del lines[index]
        elif edit == "double":
            lines.insert(index, lines[index])
        elif edit == "swap" and index + 1 < len(lines):
            lines[index], lines[index + 1] = lines[index + 1], lines[index]
        elif edit == "byte" and lines[index]:
            spot = at % len(lines[index])
            lines[index] = lines[index][:spot] + chr(33 + at % 90) + lines[index][spot + 1 :]
        elif edit == "blank":
            lines.insert(index, "")
        if not lines:
            lines = [""]
    path = _write(tmp_path / "mutated.jsonl", lines)
    one, two = both(path)
    assert two == one
