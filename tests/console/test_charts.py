"""The server-drawn charts: bars in proportion to the figures, every figure also
written as text, words escaped, and money formatted in the page's language."""

from __future__ import annotations

import re

import pytest

from voucherledger.console import charts
from voucherledger.console.templating import environment


def _widths(markup: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect [^>]*width="([0-9.]+)"', markup)]


def test_stacked_bar_parts_are_in_proportion_and_fill_the_bar() -> None:
    drawn = str(charts.stacked_bar([("a", 1), ("b", 0), ("c", 3)], title="Where"))
    assert _widths(drawn) == [25.0, 75.0]
    assert re.findall(r'x="([0-9.]+)"', drawn) == ["0.000", "25.000"]
    # The part of zero stays in the legend, with its share.
    assert "<span>b</span> <strong>0</strong>" in drawn
    assert "75.0%" in drawn
    assert "0.0%" in drawn


def test_stacked_bar_of_nothing_draws_no_part_and_no_division() -> None:
    drawn = str(charts.stacked_bar([("a", 0), ("b", -5)], title="Empty"))
    assert _widths(drawn) == []
    assert drawn.count("0%") == 2


def test_bars_scale_to_the_largest_value() -> None:
    drawn = str(charts.bars([("x", 50), ("y", 200), ("z", 0)], title="T"))
    assert _widths(drawn) == [25.0, 100.0, 0.0]


def test_columns_put_one_bar_per_series_in_every_group() -> None:
    drawn = str(
        charts.columns(["Jan", "Feb"], [("issued", [4, 8]), ("claimed", [2, 0])], title="T")
    )
    assert _widths(drawn) == [50.0, 25.0, 100.0, 0.0]
    with pytest.raises(ValueError, match="2 values for 1 labels"):
        charts.columns(["Jan"], [("issued", [1, 2])], title="T")


def test_words_are_escaped() -> None:
    drawn = str(charts.bars([("<script>", 1)], title="a & b"))
    assert "<script>" not in drawn
    assert "&lt;script&gt;" in drawn
    assert "a &amp; b" in drawn


def test_template_global_formats_money_in_the_pages_language() -> None:
    template = environment("fr").from_string(
        "{{ stacked_bar([('Non émis', 125050)], title='t', currency='EUR') }}"
    )
    assert "1\u202f250,50\xa0€" in template.render()
    english = environment("en").from_string(
        "{{ bars([('x', 125050)], title='t', currency='EUR') }}"
    )
    assert "€1,250.50" in english.render()
