"""The aggregate queries of the programme report (see :mod:`voucherledger.reporting.report`).

Each returns a few rows per slice (group attributes, category, supplier), never a
row per voucher or claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, and_, case, func, select
from sqlalchemy.orm import Session, aliased

from voucherledger import chart
from voucherledger.accounts.models import Account
from voucherledger.ledger.models import JournalTransaction, Posting
from voucherledger.programmes.models import Accreditation, Programme
from voucherledger.redemptions.models import Feedback, Redemption
from voucherledger.settlements.models import Settlement
from voucherledger.vouchers.models import Voucher

# Transactions that can move a voucher's value back to the budget or the funder.
RETURN_KINDS = ("revoke", "expire", "void", "refund")

# One aggregate row: the slice's attributes, then its figures.
AggregateRow = Row[*tuple[Any, ...]]

_GROUP_COLUMNS = (Account.women_led, Account.group_type, Account.origin_country)


def issuance(session: Session, programme_id: str) -> Sequence[AggregateRow]:
    """(women_led, group_type, origin_country, count, amount, from reserve)."""
    return session.execute(
        select(
            *_GROUP_COLUMNS,
            func.count(Voucher.id),
            func.sum(Voucher.amount),
            func.sum(Voucher.reserve_amount),
        )
        .join(Account, Account.id == Voucher.group_id)
        .where(Voucher.programme_id == programme_id)
        .group_by(*_GROUP_COLUMNS)
    ).all()


def claims(session: Session, programme_id: str) -> Sequence[AggregateRow]:
    """(group columns, category, supplier, claims, claimed, captured, settled)."""
    live = Redemption.status != "voided"
    captured = Redemption.status == "captured"
    net = Redemption.amount - Redemption.refunded_amount
    keys = (*_GROUP_COLUMNS, Redemption.service_category, Redemption.supplier_id)
    return session.execute(
        select(
            *keys,
            func.sum(case((live, 1), else_=0)),
            func.sum(case((live, Redemption.amount), else_=0)),
            func.sum(case((captured, net), else_=0)),
            # Paid: covered by a settled settlement (a proposed one has paid nothing yet).
            func.sum(case((and_(captured, Settlement.status == "settled"), net), else_=0)),
        )
        .join(Account, Account.id == Redemption.group_id)
        .outerjoin(Settlement, Settlement.id == Redemption.settlement_id)
        .where(Redemption.programme_id == programme_id)
        .group_by(*keys)
    ).all()


def feedback(session: Session, programme_id: str) -> Sequence[AggregateRow]:
    """(group columns, category, supplier, count, rating sum, product, process)."""
    keys = (*_GROUP_COLUMNS, Redemption.service_category, Redemption.supplier_id)
    return session.execute(
        select(
            *keys,
            func.count(Feedback.redemption_id),
            func.sum(Feedback.rating),
            func.sum(case((Feedback.outcome_kind == "product", 1), else_=0)),
            func.sum(case((Feedback.outcome_kind == "process", 1), else_=0)),
        )
        .join(Redemption, Redemption.id == Feedback.redemption_id)
        .join(Account, Account.id == Redemption.group_id)
        .where(Redemption.programme_id == programme_id)
        .group_by(*keys)
    ).all()


def returned(session: Session, programme: Programme) -> Sequence[AggregateRow]:
    """(group columns, value returned): the journal's postings into the budget or the
    funder in the programme's revoke, expire, void and refund transactions, each
    traced to its voucher through the transaction's metadata."""
    claim = aliased(Redemption)
    meta = JournalTransaction.meta
    voucher_id = func.coalesce(meta["voucher_id"].as_string(), claim.voucher_id)
    receivers = (
        chart.unissued(programme.id),
        chart.women_led_reserve(programme.id),
        chart.funder(programme.funder_id, programme.currency),
    )
    return session.execute(
        select(*_GROUP_COLUMNS, func.sum(Posting.amount))
        .select_from(Posting)
        .join(JournalTransaction, JournalTransaction.id == Posting.transaction_id)
        .outerjoin(claim, claim.id == meta["redemption_id"].as_string())
        .join(Voucher, Voucher.id == voucher_id)
        .join(Account, Account.id == Voucher.group_id)
        .where(
            JournalTransaction.programme_id == programme.id,
            JournalTransaction.kind.in_(RETURN_KINDS),
            Posting.account_code.in_(receivers),
            Posting.amount > 0,
        )
        .group_by(*_GROUP_COLUMNS)
    ).all()


def suppliers(session: Session, programme_id: str) -> dict[str, str]:
    """Names of the programme's accredited suppliers and of any supplier that claimed."""
    claimed = select(Redemption.supplier_id).where(Redemption.programme_id == programme_id)
    accredited = select(Accreditation.supplier_id).where(Accreditation.programme_id == programme_id)
    return dict(
        session.execute(
            select(Account.id, Account.name).where(
                Account.id.in_(claimed) | Account.id.in_(accredited)
            )
        ).all()
    )
