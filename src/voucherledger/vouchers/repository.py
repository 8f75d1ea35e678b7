"""SQL of vouchers: reads through the ORM, and the raw bulk insert of a batch issuance."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from voucherledger.core.pagination import keyset
from voucherledger.core.rawsql import Raw
from voucherledger.ledger.models import LedgerAccount
from voucherledger.programmes.repository import party_programme_ids
from voucherledger.vouchers.models import Voucher


def get(session: Session, voucher_id: str, *, for_update: bool = False) -> Voucher | None:
    stmt = select(Voucher).where(Voucher.id == voucher_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


# Every column of vouchers, in the order of the parameters of both INSERTs below.
_COLUMNS = (
    "id",
    "programme_id",
    "group_id",
    "code",
    "currency",
    "amount",
    "reserve_amount",
    "service_categories",
    "status",
    "expires_at",
    "created_at",
    "issue_transaction_id",
    "revoked_at",
    "revoke_reason",
    "ended_transaction_id",
    "created_by",
    "revoked_by",
)
# PostgreSQL: one statement over column arrays. SQLite: one prepared statement per row.
_PG_INSERT = (
    "INSERT INTO vouchers (id, programme_id, group_id, code, currency, amount, "
    "reserve_amount, service_categories, status, expires_at, created_at, "
    "issue_transaction_id, revoked_at, revoke_reason, ended_transaction_id, "
    "created_by, revoked_by) "
    "SELECT u.id, u.programme_id, u.group_id, u.code, u.currency, u.amount, "
    "u.reserve_amount, CAST(u.service_categories AS JSON), u.status, u.expires_at, "
    "u.created_at, u.issue_transaction_id, u.revoked_at, u.revoke_reason, "
    "u.ended_transaction_id, u.created_by, u.revoked_by "
    "FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], "
    "?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::timestamp[], "
    "?::timestamp[], ?::text[], ?::timestamp[], ?::text[], ?::text[], "
    "?::text[], ?::text[]) "
    "AS u(id, programme_id, group_id, code, currency, amount, reserve_amount, "
    "service_categories, status, expires_at, created_at, issue_transaction_id, "
    "revoked_at, revoke_reason, ended_transaction_id, created_by, revoked_by)"
)
_SQLITE_INSERT = (
    "INSERT INTO vouchers (id, programme_id, group_id, code, currency, amount, "
    "reserve_amount, service_categories, status, expires_at, created_at, "
    "issue_transaction_id, revoked_at, revoke_reason, ended_transaction_id, "
    "created_by, revoked_by) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new vouchers (every column given): on PostgreSQL in one statement over
    arrays, as the ledger's bulk path does; on SQLite one prepared INSERT run for
    every row. Either way the rows are those the ORM would write, without its
    per-row cost."""
    if not rows:
        return
    with Raw(session) as db:
        bound = [[db.bind(row[column]) for column in _COLUMNS] for row in rows]
        if db.dialect == "postgresql":
            db.execute(_PG_INSERT, [list(column) for column in zip(*bound, strict=True)])
        else:
            db.executemany(_SQLITE_INSERT, bound)


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
    """Which rows a caller may list: a group its own; parties their programmes'."""
    if kind == "group":
        return Voucher.group_id == account_id
    programmes = party_programme_ids(account_id, kind)
    if programmes is None:
        return ~true()
    return Voucher.programme_id.in_(programmes)


def list_visible(
    session: Session,
    account_id: str,
    kind: str,
    *,
    programme_id: str | None,
    group_id: str | None,
    status: str | None,
    now: datetime,
    after: str | None,
    limit: int,
) -> list[Voucher]:
    """Vouchers the caller may see; ``status`` as readers see it: a voucher past
    ``expires_at`` counts as ``expired`` before the sweep has ended it."""
    stmt = select(Voucher).where(visible_filter(account_id, kind))
    if programme_id is not None:
        stmt = stmt.where(Voucher.programme_id == programme_id)
    if group_id is not None:
        stmt = stmt.where(Voucher.group_id == group_id)
    if status in ("active", "exhausted"):
        stmt = stmt.where(Voucher.status == status, Voucher.expires_at > now)
    elif status == "expired":
        stmt = stmt.where(
            or_(
                Voucher.status == "expired",
                and_(Voucher.status.in_(("active", "exhausted")), Voucher.expires_at <= now),
            )
        )
    elif status is not None:
        stmt = stmt.where(Voucher.status == status)
    return keyset(session, stmt, Voucher.id, after, limit)


def group_holds_voucher(session: Session, programme_id: str, group_id: str) -> bool:
    return (
        session.execute(
            select(Voucher.id)
            .where(Voucher.programme_id == programme_id, Voucher.group_id == group_id)
            .limit(1)
        ).first()
        is not None
    )


def vouchers_to_expire(session: Session, programme_id: str, now: datetime) -> list[Voucher]:
    return list(
        session.execute(
            select(Voucher)
            .where(
                Voucher.programme_id == programme_id,
                or_(Voucher.status == "active", Voucher.status == "exhausted"),
                Voucher.expires_at <= now,
            )
            .order_by(Voucher.id)
        ).scalars()
    )
