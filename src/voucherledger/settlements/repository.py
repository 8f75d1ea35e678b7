"""SQL of settlements."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select, true, update
from sqlalchemy.orm import Session

from voucherledger.core.pagination import NO_FILTERS, ListFilters, keyset, narrow
from voucherledger.programmes.repository import party_programme_ids
from voucherledger.redemptions.models import Redemption
from voucherledger.settlements.models import Settlement


def add(session: Session, settlement: Settlement) -> None:
    session.add(settlement)
    session.flush()


def get(session: Session, settlement_id: str, *, for_update: bool = False) -> Settlement | None:
    stmt = select(Settlement).where(Settlement.id == settlement_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def cover_free_captured(
    session: Session, settlement_id: str, programme_id: str, supplier_id: str
) -> list[tuple[str, int]]:
    """Mark every captured claim of the supplier in the programme that no settlement
    covers with this settlement; returns (id, amount net of refunds) of each. A claim
    refunded in full is paid nothing, so no settlement lists it (and it stays
    ``settled: false`` whether or not a settlement follows)."""
    rows = session.execute(
        update(Redemption)
        .where(
            Redemption.programme_id == programme_id,
            Redemption.supplier_id == supplier_id,
            Redemption.status == "captured",
            Redemption.settlement_id.is_(None),
            Redemption.refunded_amount < Redemption.amount,
        )
        .values(settlement_id=settlement_id)
        .returning(Redemption.id, Redemption.amount - Redemption.refunded_amount)
    ).all()
    return sorted((redemption_id, int(net)) for redemption_id, net in rows)


def covered_net(session: Session, settlement_id: str) -> int:
    """What the claims marked with the settlement add up to, net of refunds."""
    total = session.execute(
        select(func.sum(Redemption.amount - Redemption.refunded_amount)).where(
            Redemption.settlement_id == settlement_id
        )
    ).scalar_one()
    return int(total or 0)


def free_claims(session: Session, settlement_id: str) -> None:
    """A rejected settlement's claims: covered by no settlement again."""
    session.execute(
        update(Redemption)
        .where(Redemption.settlement_id == settlement_id)
        .values(settlement_id=None)
    )


def proposed_total(session: Session, programme_id: str, supplier_id: str) -> int:
    """What the supplier's proposed settlements in the programme await: part of its
    payable, already covered."""
    total = session.execute(
        select(func.sum(Settlement.amount)).where(
            Settlement.programme_id == programme_id,
            Settlement.supplier_id == supplier_id,
            Settlement.status == "proposed",
        )
    ).scalar_one()
    return int(total or 0)


def visible_filter(account_id: str, kind: str) -> ColumnElement[bool]:
    """Which rows a caller may see: a supplier its own; parties their programmes'."""
    if kind == "supplier":
        return Settlement.supplier_id == account_id
    programmes = party_programme_ids(account_id, kind)
    if programmes is None:
        return ~true()
    return Settlement.programme_id.in_(programmes)


def get_visible(
    session: Session, settlement_id: str, account_id: str, kind: str
) -> Settlement | None:
    return session.execute(
        select(Settlement).where(Settlement.id == settlement_id, visible_filter(account_id, kind))
    ).scalar_one_or_none()


def list_visible(
    session: Session,
    account_id: str,
    kind: str,
    *,
    programme_id: str | None,
    supplier_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
    filters: ListFilters = NO_FILTERS,
) -> list[Settlement]:
    stmt = select(Settlement).where(visible_filter(account_id, kind))
    if programme_id is not None:
        stmt = stmt.where(Settlement.programme_id == programme_id)
    if supplier_id is not None:
        stmt = stmt.where(Settlement.supplier_id == supplier_id)
    if status is not None:
        stmt = stmt.where(Settlement.status == status)
    stmt = narrow(stmt, filters, Settlement.created_at, Settlement.meta)
    return keyset(session, stmt, Settlement.id, after, limit)
