"""SQL of claims, their feedback, and what a claim needs to know in one read."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    delete,
    func,
    insert,
    select,
    table,
    true,
    update,
)
from sqlalchemy import column as sa_column
from sqlalchemy.orm import Session

from voucherledger.core.pagination import NO_FILTERS, ListFilters, keyset, narrow
from voucherledger.core.rawsql import Raw, fetchone, from_db_json, from_db_time, using
from voucherledger.programmes.repository import party_programme_ids
from voucherledger.redemptions.models import CodeFailure, Feedback, Redemption
from voucherledger.vouchers.models import Voucher


@dataclass(frozen=True, slots=True)
class ClaimVoucher:
    """What a claim needs of its voucher (read without building an ORM object)."""

    id: str
    programme_id: str
    group_id: str
    currency: str
    service_categories: list[str]
    status: str
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimContext:
    voucher: ClaimVoucher
    rules: dict[str, Any]
    accreditation_status: str | None
    accredited_categories: list[str] | None
    programme_name: str
    # Who reads the programme's events: its funder, managers and auditors.
    programme_readers: tuple[str, ...]


# How many failed look-ups a supplier made after a time, counted up to a cap (a range
# scan of ``ix_code_failures_supplier_id_failed_at`` that stops at the cap); alone, and
# inside the claim's read.
_RECENT_FAILURES = (
    "SELECT count(*) AS n FROM (SELECT 1 FROM code_failures "
    "WHERE supplier_id = ? AND failed_at > ? LIMIT ?) AS recent"
)

# The programme's managers and auditors as one comma-separated text (ids hold no
# comma), in the same read: the claim's events go to them.
_PARTIES = {
    "postgresql": "string_agg(pp.account_id, ',')",
    "sqlite": "group_concat(pp.account_id, ',')",
}
_CLAIM_CONTEXT = {
    # Fixed text: the only value put in is one of the two aggregates above. One row
    # always: the supplier's recent failures (counted up to the limit), then the
    # voucher's columns, NULL when no voucher has the code.
    dialect: (
        "SELECT f.n, v.id, v.programme_id, v.group_id, v.currency, v.service_categories, "  # noqa: S608
        "v.status, v.expires_at, v.created_at, p.rules, a.status, a.service_categories, "
        f"p.name, p.funder_id, (SELECT {parties} FROM programme_parties pp "
        "WHERE pp.programme_id = v.programme_id) "
        f"FROM ({_RECENT_FAILURES}) AS f "
        "LEFT JOIN vouchers v ON v.code = ? "
        "LEFT JOIN programmes p ON p.id = v.programme_id "
        "LEFT JOIN accreditations a ON a.programme_id = v.programme_id AND a.supplier_id = ?"
    )
    for dialect, parties in _PARTIES.items()
}


def claim_context(
    session: Session, code: str, supplier_id: str, *, failures_since: datetime, cap: int
) -> tuple[int, ClaimContext | None]:
    """The supplier's failed look-ups since ``failures_since`` (counted up to ``cap``),
    and the voucher with this code with its programme's rules and the supplier's
    accreditation there: one indexed read on the hot path, straight to the driver."""
    with Raw(session) as db:
        row = db.fetchone(
            _CLAIM_CONTEXT[db.dialect],
            (supplier_id, db.bind(failures_since), cap, code, supplier_id),
        )
    failures = int(row[0])
    row = row[1:]
    if row[0] is None:
        return failures, None
    voucher = ClaimVoucher(
        id=row[0],
        programme_id=row[1],
        group_id=row[2],
        currency=row[3],
        service_categories=from_db_json(row[4]),
        status=row[5],
        expires_at=from_db_time(row[6]),
        created_at=from_db_time(row[7]),
    )
    categories = from_db_json(row[10]) if row[10] is not None else None
    readers = {row[12], *(row[13].split(",") if row[13] else ())}
    context = ClaimContext(
        voucher, from_db_json(row[8]), row[9], categories, str(row[11]), tuple(sorted(readers))
    )
    return failures, context


_CLAIM_COLUMNS = (
    "id",
    "voucher_id",
    "programme_id",
    "supplier_id",
    "group_id",
    "amount",
    "refunded_amount",
    "currency",
    "service_category",
    "description",
    "delivered_on",
    "evidence",
    "status",
    "created_at",
    "hold_expires_at",
    "decided_at",
    "void_reason",
    "settlement_id",
    "created_by",
    "decided_by",
    "meta",
)
# The model's attribute where it differs from the column's name.
_COLUMN_NAME = {"meta": "metadata"}
_INSERT_CLAIM = (
    f"INSERT INTO redemptions ({', '.join(_COLUMN_NAME.get(c, c) for c in _CLAIM_COLUMNS)}) "  # noqa: S608 - fixed names
    f"VALUES ({', '.join('?' for _ in _CLAIM_COLUMNS)})"
)


def insert_claim(session: Session, values: dict[str, Any], db: Raw | None = None) -> None:
    """A new claim row (every column given), straight to the driver (on ``db`` when the
    caller has one open): the claim is the hot path, and a unit-of-work flush of one new
    object costs more than the statement. Values are bound as the ORM's column types
    bind them."""
    with using(session, db) as raw:
        raw.execute(_INSERT_CLAIM, [raw.bind(values[column]) for column in _CLAIM_COLUMNS])


def add(session: Session, redemption: Redemption) -> None:
    session.add(redemption)
    session.flush()


def get(session: Session, redemption_id: str, *, for_update: bool = False) -> Redemption | None:
    stmt = select(Redemption).where(Redemption.id == redemption_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def voucher_status(session: Session, voucher_id: str) -> str | None:
    """The voucher's status as committed now: read afresh by a new statement, so a claim
    that lost a race learns what the winner did."""
    row = fetchone(session, "SELECT status FROM vouchers WHERE id = ?", (voucher_id,))
    return None if row is None else str(row[0])


def set_voucher_status(session: Session, voucher_id: str, status: str) -> None:
    session.execute(update(Voucher).where(Voucher.id == voucher_id).values(status=status))


def visible_filter(account_id: str, kind: str) -> ColumnElement[bool]:
    """Which rows a caller may list: suppliers and groups their own; parties their programmes'."""
    if kind == "supplier":
        return Redemption.supplier_id == account_id
    if kind == "group":
        return Redemption.group_id == account_id
    programmes = party_programme_ids(account_id, kind)
    if programmes is None:
        return ~true()
    return Redemption.programme_id.in_(programmes)


def list_visible(
    session: Session,
    account_id: str,
    kind: str,
    *,
    filters: dict[str, str | None],
    after: str | None,
    limit: int,
    narrowed: ListFilters = NO_FILTERS,
) -> list[Redemption]:
    stmt = select(Redemption).where(visible_filter(account_id, kind))
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(Redemption, column) == value)
    stmt = narrow(stmt, narrowed, Redemption.created_at, Redemption.meta)
    return keyset(session, stmt, Redemption.id, after, limit)


# The settlements table as this layer sees it (the settlements package sits above).
_settlements = table("settlements", sa_column("id", String), sa_column("status", String))


def settlement_statuses(session: Session, settlement_ids: Collection[str]) -> dict[str, str]:
    """The status of each of these settlements (proposed, settled, rejected)."""
    if not settlement_ids:
        return {}
    rows = session.execute(
        select(_settlements.c.id, _settlements.c.status).where(
            _settlements.c.id.in_(sorted(set(settlement_ids)))
        )
    )
    return {str(sid): str(status) for sid, status in rows}


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


def statuses(session: Session, programme_id: str) -> list[str]:
    """The status of each of the programme's claims."""
    return list(
        session.execute(
            select(Redemption.status).where(Redemption.programme_id == programme_id)
        ).scalars()
    )


# --- failed code look-ups (the limiter) -------------------------------------------------


def recent_code_failures(session: Session, supplier_id: str, since: datetime, cap: int) -> int:
    """How many failed look-ups the supplier made after ``since``, counting up to ``cap``
    (a claim with a well-formed code gets the count in its one read instead)."""
    with Raw(session) as db:
        row = db.fetchone(_RECENT_FAILURES, (supplier_id, db.bind(since), cap))
    return int(row[0])


def insert_code_failure(connection: Connection, supplier_id: str, at: datetime) -> None:
    """On a connection of its own: the failure must outlive the request's rollback."""
    connection.execute(insert(CodeFailure).values(supplier_id=supplier_id, failed_at=at))


def purge_code_failures(session: Session, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` failures recorded before ``before``; returns how many."""
    oldest = select(CodeFailure.id).where(CodeFailure.failed_at < before).limit(batch)
    ids = list(session.execute(oldest).scalars())
    if ids:
        session.execute(delete(CodeFailure).where(CodeFailure.id.in_(ids)))
    return len(ids)
