"""SQL of vouchers."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, true
from sqlalchemy.orm import Session

from voucherledger.ledger.models import LedgerAccount
from voucherledger.programmes.models import Programme, ProgrammeParty
from voucherledger.vouchers.models import Voucher


def get(session: Session, voucher_id: str, *, for_update: bool = False) -> Voucher | None:
    stmt = select(Voucher).where(Voucher.id == voucher_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def insert_many(session: Session, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 2000):
        session.execute(insert(Voucher), rows[start : start + 2000])


def group_totals(session: Session, programme_id: str, group_ids: Collection[str]) -> dict[str, int]:
    """Face value already issued to each group in the programme."""
    totals: dict[str, int] = {}
    wanted = list(group_ids)
    for start in range(0, len(wanted), 500):
        for group_id, total in session.execute(
            select(Voucher.group_id, func.sum(Voucher.amount))
            .where(
                Voucher.programme_id == programme_id,
                Voucher.group_id.in_(wanted[start : start + 500]),
            )
            .group_by(Voucher.group_id)
        ):
            totals[group_id] = int(total)
    return totals


def balances_of(session: Session, codes: Collection[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    wanted = list(codes)
    for start in range(0, len(wanted), 500):
        for code, balance in session.execute(
            select(LedgerAccount.code, LedgerAccount.balance).where(
                LedgerAccount.code.in_(wanted[start : start + 500])
            )
        ):
            found[code] = balance
    return found


def visible_filter(account_id: str, kind: str) -> ColumnElement[bool]:
    """Which vouchers a caller may list: a group its own; parties their programmes'."""
    if kind == "group":
        return Voucher.group_id == account_id
    if kind == "funder":
        return Voucher.programme_id.in_(
            select(Programme.id).where(Programme.funder_id == account_id)
        )
    if kind in ("manager", "auditor"):
        return Voucher.programme_id.in_(
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
    programme_id: str | None,
    group_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> list[Voucher]:
    stmt = select(Voucher).where(visible_filter(account_id, kind)).order_by(Voucher.id)
    if programme_id is not None:
        stmt = stmt.where(Voucher.programme_id == programme_id)
    if group_id is not None:
        stmt = stmt.where(Voucher.group_id == group_id)
    if status is not None:
        stmt = stmt.where(Voucher.status == status)
    if after is not None:
        stmt = stmt.where(Voucher.id > after)
    return list(session.execute(stmt.limit(limit)).scalars())
