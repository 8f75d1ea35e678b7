"""SQL of claims, their feedback, and what a claim needs to know in one read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, insert, select, true, update
from sqlalchemy.orm import Session

from voucherledger.programmes.models import Accreditation, Programme, ProgrammeParty
from voucherledger.redemptions.models import Feedback, Redemption
from voucherledger.vouchers.models import Voucher


@dataclass(frozen=True, slots=True)
class ClaimContext:
    voucher: Voucher
    rules: dict[str, Any]
    accreditation_status: str | None
    accredited_categories: list[str] | None


def claim_context(session: Session, code: str, supplier_id: str) -> ClaimContext | None:
    """The voucher with this code, its programme's rules and the supplier's accreditation
    there: one indexed read on the hot path."""
    row = session.execute(
        select(Voucher, Programme.rules, Accreditation.status, Accreditation.service_categories)
        .join(Programme, Programme.id == Voucher.programme_id)
        .outerjoin(
            Accreditation,
            (Accreditation.programme_id == Voucher.programme_id)
            & (Accreditation.supplier_id == supplier_id),
        )
        .where(Voucher.code == code)
    ).one_or_none()
    if row is None:
        return None
    voucher, rules, status, categories = row
    return ClaimContext(voucher, rules, status, categories)


_INSERT_CLAIM = insert(cast(Table, Redemption.__table__))


def insert_claim(session: Session, values: dict[str, Any]) -> None:
    """A new claim row (every column given) by a Core INSERT: the claim is the hot path,
    and a unit-of-work flush of one new object costs more than the statement does."""
    session.connection().execute(_INSERT_CLAIM, values)


def add(session: Session, redemption: Redemption) -> None:
    session.add(redemption)
    session.flush()


def get(session: Session, redemption_id: str, *, for_update: bool = False) -> Redemption | None:
    stmt = select(Redemption).where(Redemption.id == redemption_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def set_voucher_status(session: Session, voucher_id: str, status: str) -> None:
    session.execute(update(Voucher).where(Voucher.id == voucher_id).values(status=status))


def visible_filter(account_id: str, kind: str) -> ColumnElement[bool]:
    if kind == "supplier":
        return Redemption.supplier_id == account_id
    if kind == "group":
        return Redemption.group_id == account_id
    if kind == "funder":
        return Redemption.programme_id.in_(
            select(Programme.id).where(Programme.funder_id == account_id)
        )
    if kind in ("manager", "auditor"):
        return Redemption.programme_id.in_(
            select(ProgrammeParty.programme_id).where(
                ProgrammeParty.account_id == account_id, ProgrammeParty.role == kind
            )
        )
    return ~true()


def list_visible(
    session: Session,
    account_id: str,
    kind: str,
    *,
    filters: dict[str, str | None],
    after: str | None,
    limit: int,
) -> list[Redemption]:
    stmt = select(Redemption).where(visible_filter(account_id, kind)).order_by(Redemption.id)
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(Redemption, column) == value)
    if after is not None:
        stmt = stmt.where(Redemption.id > after)
    return list(session.execute(stmt.limit(limit)).scalars())


def expired_holds(session: Session, programme_id: str, now: datetime) -> list[Redemption]:
    return list(
        session.execute(
            select(Redemption)
            .where(
                Redemption.programme_id == programme_id,
                Redemption.status == "pending",
                Redemption.hold_expires_at <= now,
            )
            .order_by(Redemption.id)
            .with_for_update()
        ).scalars()
    )


def add_feedback(session: Session, feedback: Feedback) -> None:
    session.add(feedback)
    session.flush()


def get_feedback(session: Session, redemption_id: str) -> Feedback | None:
    return session.get(Feedback, redemption_id)


def supplier_stats(session: Session, programme_id: str) -> dict[str, tuple[int, int, float | None]]:
    """Per supplier in the programme: captured claims, feedback count, average rating."""
    claims: dict[str, int] = {
        supplier: int(count)
        for supplier, count in session.execute(
            select(Redemption.supplier_id, func.count())
            .where(Redemption.programme_id == programme_id, Redemption.status == "captured")
            .group_by(Redemption.supplier_id)
        )
    }
    ratings: dict[str, tuple[int, float]] = {
        supplier: (int(count), float(avg))
        for supplier, count, avg in session.execute(
            select(Redemption.supplier_id, func.count(), func.avg(Feedback.rating))
            .join(Feedback, Feedback.redemption_id == Redemption.id)
            .where(Redemption.programme_id == programme_id)
            .group_by(Redemption.supplier_id)
        )
    }
    out: dict[str, tuple[int, int, float | None]] = {}
    for supplier in set(claims) | set(ratings):
        count, avg = ratings[supplier] if supplier in ratings else (0, None)
        out[supplier] = (claims.get(supplier, 0), count, avg)
    return out
