"""SQL of settlements."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, true, update
from sqlalchemy.orm import Session

from voucherledger.core.pagination import keyset
from voucherledger.programmes.repository import party_programme_ids
from voucherledger.redemptions.models import Redemption
from voucherledger.settlements.models import Settlement


def add(session: Session, settlement: Settlement) -> None:
    session.add(settlement)
    session.flush()


def settle_captured(
    session: Session, settlement_id: str, programme_id: str, supplier_id: str
) -> list[tuple[str, int]]:
    """Mark every captured, unsettled claim of the supplier in the programme as settled
    by this settlement; returns (id, amount net of refunds) of each. A claim refunded
    in full is paid nothing, so no settlement lists it (and it stays ``settled: false``
    whether or not a settlement follows)."""
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


def redemption_ids(session: Session, settlement_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {sid: [] for sid in settlement_ids}
    if not settlement_ids:
        return out
    for redemption_id, settlement_id in session.execute(
        select(Redemption.id, Redemption.settlement_id)
        .where(Redemption.settlement_id.in_(settlement_ids))
        .order_by(Redemption.id)
    ):
        if settlement_id is not None:
            out[settlement_id].append(redemption_id)
    return out


def visible_filter(account_id: str, kind: str) -> ColumnElement[bool]:
    """Which rows a caller may list: a supplier its own; parties their programmes'."""
    if kind == "supplier":
        return Settlement.supplier_id == account_id
    programmes = party_programme_ids(account_id, kind)
    if programmes is None:
        return ~true()
    return Settlement.programme_id.in_(programmes)


def list_visible(
    session: Session,
    account_id: str,
    kind: str,
    *,
    programme_id: str | None,
    supplier_id: str | None,
    after: str | None,
    limit: int,
) -> list[Settlement]:
    stmt = select(Settlement).where(visible_filter(account_id, kind))
    if programme_id is not None:
        stmt = stmt.where(Settlement.programme_id == programme_id)
    if supplier_id is not None:
        stmt = stmt.where(Settlement.supplier_id == supplier_id)
    return keyset(session, stmt, Settlement.id, after, limit)
