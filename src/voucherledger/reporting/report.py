"""The programme report: who was reached, with how much, and what it achieved.

Every figure is a SQL aggregate over the programme's rows, grouped by the
attributes a line can be about (the group's women-led flag, type and origin
country; the claim's category and supplier). Python only rolls those few
aggregate rows up into the lines of each dimension, so the work in Python grows
with the number of distinct slices, not with the number of vouchers or claims.

What counts where:
- **Issuance** (vouchers issued, amount issued) and **returned** belong to the
  voucher's group. They are not split by service category: a voucher may be
  spent on any of its categories, so its face value is not apportioned between
  them, and category and supplier lines carry null for them.
- **Claims** count under the claim's own category and supplier and the group
  that holds the voucher. ``claimed`` is the amount of claims not voided
  (pending and captured); ``captured`` is captured claims net of refunds;
  ``settled`` is the net amount of captured claims a settlement paid.
- **Returned** is read from the journal: the value that reached the programme's
  budget (unissued or women-led reserve) or, once closed, its funder, in
  ``revoke`` and ``expire`` transactions (``metadata.voucher_id``) and in
  ``void`` and ``refund`` transactions (``metadata.redemption_id``) posted after
  the voucher had ended. A void or refund on a live voucher goes back to the
  voucher itself and is not returned.
- **Feedback** counts under its claim's slices.

So, per group line: amount issued = still on the vouchers (spendable or held)
+ captured + returned.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from voucherledger import chart, ledger
from voucherledger.core.db import utcnow
from voucherledger.core.exporttext import csv_cell
from voucherledger.programmes.models import Programme
from voucherledger.programmes.schemas import (
    ProgrammeReport,
    ReportBreakdowns,
    ReportDimension,
    ReportLine,
    WomenLedShare,
)
from voucherledger.reporting import repository
from voucherledger.reporting.repository import AggregateRow

# Dimensions of the voucher's group: they carry issuance and returned value.
GROUP_DIMENSIONS: tuple[ReportDimension, ...] = ("women_led", "group_type", "origin_country")
# Dimensions of the claim only: issuance is not split between them.
CLAIM_DIMENSIONS: tuple[ReportDimension, ...] = ("service_category", "supplier")

CSV_COLUMNS = (
    "dimension",
    "key",
    "vouchers_issued",
    "amount_issued",
    "claimed",
    "captured",
    "settled",
    "returned",
    "redemption_rate",
    "claims",
    "feedback_count",
    "average_rating",
    "outcomes_product",
    "outcomes_process",
    "label",
)

_Slice = tuple[ReportDimension, str]  # (dimension, key)


@dataclass(slots=True)
class _Figures:
    vouchers_issued: int = 0
    amount_issued: int = 0
    claims: int = 0
    claimed: int = 0
    captured: int = 0
    settled: int = 0
    returned: int = 0
    feedback_count: int = 0
    rating_sum: int = 0
    outcomes_product: int = 0
    outcomes_process: int = 0

    def add(self, **amounts: int) -> None:
        for name, value in amounts.items():
            setattr(self, name, getattr(self, name) + value)


def _group_slices(women_led: bool, group_type: str, origin_country: str) -> list[_Slice]:
    return [
        ("total", "all"),
        ("women_led", "women_led" if women_led else "other"),
        ("group_type", group_type),
        ("origin_country", origin_country),
    ]


def _claim_slices(row: AggregateRow) -> list[_Slice]:
    women_led, group_type, origin_country, category, supplier_id = row[:5]
    return [
        *_group_slices(women_led, group_type, origin_country),
        ("service_category", category),
        ("supplier", supplier_id),
    ]


def ratio(numerator: int, denominator: int, places: int) -> str | None:
    """``numerator / denominator`` as a decimal string rounded half up; None over zero."""
    if denominator == 0:
        return None
    exponent = Decimal(1).scaleb(-places)
    return str((Decimal(numerator) / Decimal(denominator)).quantize(exponent, ROUND_HALF_UP))


# --- the report ----------------------------------------------------------------------


def _line(slice_: _Slice, figures: _Figures, label: str | None) -> ReportLine:
    dimension, key = slice_
    by_group = dimension not in CLAIM_DIMENSIONS
    return ReportLine(
        dimension=dimension,
        key=key,
        label=label,
        vouchers_issued=figures.vouchers_issued if by_group else None,
        amount_issued=figures.amount_issued if by_group else None,
        claims=figures.claims,
        claimed=figures.claimed,
        captured=figures.captured,
        settled=figures.settled,
        returned=figures.returned if by_group else None,
        redemption_rate=ratio(figures.captured, figures.amount_issued, 4) if by_group else None,
        feedback_count=figures.feedback_count,
        average_rating=ratio(figures.rating_sum, figures.feedback_count, 2),
        outcomes_product=figures.outcomes_product,
        outcomes_process=figures.outcomes_process,
    )


def build(session: Session, programme: Programme) -> ProgrammeReport:
    """The report of a programme the caller may read (see ``service.access``)."""
    suppliers = repository.suppliers(session, programme.id)
    # Slices shown even when empty: the total, both sides of women-led, every
    # category the programme funds, every supplier it accredited.
    shown: list[_Slice] = [
        ("total", "all"),
        ("women_led", "women_led"),
        ("women_led", "other"),
        *(("service_category", c) for c in programme.service_categories),
        *(("supplier", s) for s in suppliers),
    ]
    lines = {slice_: _Figures() for slice_ in shown}

    def add(slices: Iterable[_Slice], **amounts: int) -> None:
        for slice_ in slices:
            lines.setdefault(slice_, _Figures()).add(**amounts)

    women_led_amount = from_reserve = 0
    for women_led, group_type, origin, count, amount, reserve in repository.issuance(
        session, programme.id
    ):
        add(
            _group_slices(women_led, group_type, origin),
            vouchers_issued=int(count),
            amount_issued=int(amount),
        )
        if women_led:
            women_led_amount += int(amount)
            from_reserve += int(reserve)
    for row in repository.claims(session, programme.id):
        add(
            _claim_slices(row),
            claims=int(row[5]),
            claimed=int(row[6]),
            captured=int(row[7]),
            settled=int(row[8]),
        )
    for row in repository.feedback(session, programme.id):
        add(
            _claim_slices(row),
            feedback_count=int(row[5]),
            rating_sum=int(row[6]),
            outcomes_product=int(row[7]),
            outcomes_process=int(row[8]),
        )
    for women_led, group_type, origin, amount in repository.returned(session, programme):
        add(_group_slices(women_led, group_type, origin), returned=int(amount))

    def breakdown(dimension: ReportDimension) -> list[ReportLine]:
        return [
            _line(slice_, figures, suppliers.get(slice_[1]) if dimension == "supplier" else None)
            for slice_, figures in sorted(lines.items())
            if slice_[0] == dimension
        ]

    totals = lines[("total", "all")]
    reserve = chart.women_led_reserve(programme.id)
    return ProgrammeReport(
        programme_id=programme.id,
        name=programme.name,
        currency=programme.currency,
        status=programme.status,
        generated_at=utcnow(),
        totals=_line(("total", "all"), totals, None),
        women_led=WomenLedShare(
            amount_issued=women_led_amount,
            share_of_issuance=ratio(women_led_amount, totals.amount_issued, 4),
            reserve_pct=int(programme.rules.get("women_led_reserve_pct", 0)),
            issued_from_reserve=from_reserve,
            reserve_balance=ledger.balances(session, [reserve])[reserve],
        ),
        breakdowns=ReportBreakdowns(
            **{
                dimension: breakdown(dimension)
                for dimension in (*GROUP_DIMENSIONS, *CLAIM_DIMENSIONS)
            }
        ),
    )


def to_csv(report: ProgrammeReport) -> str:
    """One row per line — the total first, then each dimension's lines — under a header.
    Every cell goes through :func:`~voucherledger.core.exporttext.csv_cell`: figures as
    numbers, text a spreadsheet would run as a formula (a supplier's name is free text)
    after an apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    rows = [report.totals]
    for dimension in (*GROUP_DIMENSIONS, *CLAIM_DIMENSIONS):
        rows.extend(getattr(report.breakdowns, dimension))
    for line in rows:
        writer.writerow(csv_cell(getattr(line, column)) for column in CSV_COLUMNS)
    return out.getvalue()
