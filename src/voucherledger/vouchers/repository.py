"""SQL of vouchers: reads through the ORM, and the raw bulk insert of a batch issuance."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from voucherledger.core.pagination import NO_FILTERS, ListFilters, keyset, narrow
from voucherledger.core.rawsql import Raw
from voucherledger.ledger.models import JournalTransaction, LedgerAccount, Posting
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
    "metadata",
)
# PostgreSQL: one statement over column arrays. SQLite: one prepared statement per row.
_PG_INSERT = (
    "INSERT INTO vouchers (id, programme_id, group_id, code, currency, amount, "
    "reserve_amount, service_categories, status, expires_at, created_at, "
    "issue_transaction_id, revoked_at, revoke_reason, ended_transaction_id, "
    "created_by, revoked_by, metadata) "
    "SELECT u.id, u.programme_id, u.group_id, u.code, u.currency, u.amount, "
    "u.reserve_amount, CAST(u.service_categories AS JSON), u.status, u.expires_at, "
    "u.created_at, u.issue_transaction_id, u.revoked_at, u.revoke_reason, "
    "u.ended_transaction_id, u.created_by, u.revoked_by, CAST(u.metadata AS JSON) "
    "FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], "
    "?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::timestamp[], "
    "?::timestamp[], ?::text[], ?::timestamp[], ?::text[], ?::text[], "
    "?::text[], ?::text[], ?::text[]) "
    "AS u(id, programme_id, group_id, code, currency, amount, reserve_amount, "
    "service_categories, status, expires_at, created_at, issue_transaction_id, "
    "revoked_at, revoke_reason, ended_transaction_id, created_by, revoked_by, metadata)"
)
_SQLITE_INSERT = (
    "INSERT INTO vouchers (id, programme_id, group_id, code, currency, amount, "
    "reserve_amount, service_categories, status, expires_at, created_at, "
    "issue_transaction_id, revoked_at, revoke_reason, ended_transaction_id, "
    "created_by, revoked_by, metadata) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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


# The events of a batch issuance (one per voucher), written as the vouchers are: a
# raw bulk INSERT of the rows core.events.emit would add through the ORM.
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
    filters: ListFilters = NO_FILTERS,
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
    stmt = narrow(stmt, filters, Voucher.created_at, Voucher.meta)
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


# --- the statement: a voucher's movements, read from its ledger postings --------------


def _after(
    created_at: InstrumentedAttribute[datetime],
    txn_id: InstrumentedAttribute[str],
    at: tuple[datetime, str],
) -> ColumnElement[bool]:
    """Strictly after ``at`` (an instant and a transaction id) in statement order."""
    return or_(created_at > at[0], and_(created_at == at[0], txn_id > at[1]))


def statement_position(session: Session, transaction_id: str) -> tuple[datetime, str] | None:
    """Where a transaction stands in statement order (the cursor of a page)."""
    found = session.execute(
        select(JournalTransaction.created_at).where(JournalTransaction.id == transaction_id)
    ).scalar_one_or_none()
    return None if found is None else (found, transaction_id)


def statement_transactions(
    session: Session, codes: Collection[str], after: tuple[datetime, str] | None, limit: int
) -> list[JournalTransaction]:
    """The journal transactions with a posting to one of these accounts, oldest first
    (by time, then id), after ``after``; along ``ix_ledger_postings_account_created``."""
    touched = select(Posting.transaction_id).where(Posting.account_code.in_(list(codes)))
    if after is not None:
        touched = touched.where(_after(Posting.created_at, Posting.transaction_id, after))
    stmt = (
        select(JournalTransaction)
        .where(JournalTransaction.id.in_(touched))
        .order_by(JournalTransaction.created_at, JournalTransaction.id)
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def postings_of(
    session: Session, codes: Collection[str], transaction_ids: Collection[str]
) -> list[tuple[str, str, int]]:
    """``(transaction id, account, amount)`` of these transactions' postings to these
    accounts."""
    if not transaction_ids:
        return []
    rows = session.execute(
        select(Posting.transaction_id, Posting.account_code, Posting.amount).where(
            Posting.account_code.in_(list(codes)),
            Posting.transaction_id.in_(sorted(set(transaction_ids))),
        )
    )
    return [(str(txn), str(code), int(amount)) for txn, code, amount in rows]


def balance_through(session: Session, code: str, at: tuple[datetime, str]) -> int:
    """The sum of the account's postings up to and including ``at`` in statement order."""
    total = session.execute(
        select(func.coalesce(func.sum(Posting.amount), 0)).where(
            Posting.account_code == code,
            ~_after(Posting.created_at, Posting.transaction_id, at),
        )
    ).scalar_one()
    return int(total)
