"""The text writers of the exports hold for any string: XML 1.0 that parses, a JSON
line that stays one line, a CSV cell that is not a formula."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from voucherledger.core.exporttext import (
    FORMULA_STARTS,
    csv_cell,
    json_line,
    xml_attr,
    xml_chars,
    xml_text,
)

# Every code point, lone surrogates included: a str can hold them.
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF))
HOSTILE = "\x00\x01\x08\x0b\x0c\x1f\r\n\t\ufffe\uffff\ud800\x85\u2028\u2029&<>\"'"


def is_xml_char(c: str) -> bool:
    n = ord(c)
    return c in "\t\n\r" or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000


@given(ANY_TEXT)
@example(HOSTILE)
def test_any_string_is_well_formed_xml_text_and_attribute(text: str) -> None:
    document = f"<a b={xml_attr(text)}>{xml_text(text)}</a>".encode()
    parsed = etree.fromstring(document)
    expected = "".join(c if is_xml_char(c) else "\ufffd" for c in text)
    assert parsed.get("b") == expected
    assert (parsed.text or "") == expected
    assert len(xml_chars(text)) == len(text)  # one for one


@given(ANY_TEXT)
@example(HOSTILE)
def test_a_json_line_is_one_line_and_the_same_value(text: str) -> None:
    value = {"memo": text, text: [text]}
    line = json_line(json.dumps(value, ensure_ascii=False))
    assert line.splitlines() == [line]
    assert json.loads(line) == value


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_text_cell_that_starts_a_formula_gets_an_apostrophe(start: str) -> None:
    text = f'{start}HYPERLINK("http://evil.example")'
    assert csv_cell(text) == "'" + text
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell(text)])
    assert next(csv.reader(io.StringIO(out.getvalue(), newline=""))) == ["'" + text]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (-5000, "-5000"),
        (0, "0"),
        (Decimal("-1.50"), "-1.50"),
        ("-5000", "'-5000"),  # text, not a number: it may be anything
        ("plain", "plain"),
        (" =1", " =1"),
        ("a=b", "a=b"),
        (True, "True"),
    ],
)
def test_numbers_stay_numbers_and_other_text_is_kept(value: object, cell: str) -> None:
    assert csv_cell(value) == cell
