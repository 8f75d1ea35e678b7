"""A programme's disaggregated report as tables and charts, and its CSV download.

Everything comes from ``GET /v1/programmes/{id}/report``: the page only names the
slices in the reader's language (group types, countries by Babel, categories) and
formats the figures; it adds and rounds nothing. Each dimension is a table and a
``bars`` chart of the same figures (the table is the chart's text equivalent):
the amount issued for the groups' dimensions (women-led, group type, origin), the
accepted amount for the claims' (category, supplier), which the API does not split
issuance by. Outcomes and ratings are shown per supplier and per category.

The API takes no period: the report is of the programme's whole life, as of
``generated_at``. The CSV is the API's own (``format=csv``), passed through with
its header and ``Content-Disposition``, so the file is the one an auditor gets
with curl.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel.numbers import format_percent
from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.accreditation import rating_in
from voucherledger.console.admin import GROUP_TYPE_NAMES, countries
from voucherledger.console.client import problem_of
from voucherledger.console.messages import CATEGORIES, N_
from voucherledger.console.templating import environment, gettext_for
from voucherledger.console.web import console_router, page, signed_in

router = console_router()

PARTIES = ("funder", "manager", "auditor")

WOMEN_LED: dict[str, str] = {
    "women_led": N_("Women-led groups"),
    "other": N_("Other groups"),
}

# The dimensions in the order shown: (key in breakdowns, heading, group dimension?).
DIMENSIONS: tuple[tuple[str, str, bool], ...] = (
    ("women_led", N_("Women-led or not"), True),
    ("group_type", N_("By type of group"), True),
    ("origin_country", N_("By country of origin"), True),
    ("service_category", N_("By category of service"), False),
    ("supplier", N_("By supplier"), False),
)


@dataclass(frozen=True)
class Row:
    """One line of the report with its name in the reader's language."""

    name: str
    line: dict[str, Any]


@dataclass(frozen=True)
class Dimension:
    key: str
    heading: str
    by_group: bool
    rows: list[Row]

    @property
    def chart_rows(self) -> list[tuple[str, int]]:
        """The figure the chart shows: issued for groups, accepted for claims."""
        figure = "amount_issued" if self.by_group else "captured"
        return [(r.name, int(r.line[figure] or 0)) for r in self.rows]


def _namer(language: str) -> Callable[[str, dict[str, Any]], str]:
    gettext = gettext_for(language)
    country_names = dict(countries(language))

    def name(dimension: str, line: dict[str, Any]) -> str:
        key = str(line["key"])
        if dimension == "women_led":
            return str(gettext(WOMEN_LED[key])) if key in WOMEN_LED else key
        if dimension == "group_type":
            return str(gettext(GROUP_TYPE_NAMES[key])) if key in GROUP_TYPE_NAMES else key
        if dimension == "origin_country":
            return country_names.get(key, key)
        if dimension == "service_category":
            return str(gettext(CATEGORIES[key])) if key in CATEGORIES else key
        return str(line.get("label") or key)

    return name


def dimensions(report: dict[str, Any], language: str) -> list[Dimension]:
    """The report's breakdowns, each line named; sorted by name (the API sorts by key)."""
    gettext = gettext_for(language)
    name = _namer(language)
    shown = []
    for key, heading, by_group in DIMENSIONS:
        rows = [Row(name(key, line), line) for line in report["breakdowns"][key]]
        if key == "women_led":
            rows.sort(key=lambda r: r.line["key"] != "women_led")  # women-led first
        else:
            rows.sort(key=lambda r: r.name.casefold())
        shown.append(Dimension(key, str(gettext(heading)), by_group, rows))
    return shown


def _formats(language: str, currency: str) -> dict[str, Any]:
    money = environment(language).filters["money"]

    def in_currency(amount: int) -> str:
        return str(money(amount, currency))

    def percent(ratio: str | None) -> str:
        if ratio is None:
            return ""
        return str(format_percent(Decimal(ratio), format="#,##0.##%", locale=language))

    def whole_percent(value: int) -> str:
        return str(format_percent(Decimal(value) / 100, locale=language))

    return {
        "in_currency": in_currency,
        "percent": percent,
        "whole_percent": whole_percent,
        "rating": rating_in(language),
    }


@router.get("/programmes/{programme_id}/report")
async def report(request: Request, programme_id: str) -> Response:
    me = await signed_in(request, kind=PARTIES)
    programme = await me.api.get(f"/v1/programmes/{programme_id}")
    built = await me.api.get(f"/v1/programmes/{programme_id}/report")
    language = request.state.language
    return page(
        request,
        me,
        "programmes/report.html",
        programme=programme,
        tab="report",
        report=built,
        dimensions=dimensions(built, language),
        **_formats(language, str(built["currency"])),
    )


@router.get("/programmes/{programme_id}/report.csv")
async def report_csv(request: Request, programme_id: str) -> Response:
    """The API's CSV of the report, as it sent it."""
    me = await signed_in(request, kind=PARTIES)
    answer = await me.api.send(
        "GET", f"/v1/programmes/{programme_id}/report", params={"format": "csv"}
    )
    if answer.status_code >= 400:
        raise problem_of(answer)
    headers = {
        "Content-Disposition": answer.headers.get(
            "content-disposition", f'attachment; filename="report-{programme_id}.csv"'
        )
    }
    return Response(
        answer.content,
        media_type=answer.headers.get("content-type", "text/csv; charset=utf-8"),
        headers=headers,
    )
