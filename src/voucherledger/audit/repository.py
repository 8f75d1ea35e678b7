"""SQL of the audit package: the journal reads behind ``/v1/ledger/*``, and the reads the
open-standard exports (IATI, 360Giving) draw on.

Audit reads across the schema by design — programmes and their parties, accounts,
vouchers, claims and settlements beside the journal — so those queries live here
rather than in the owning domains' repositories. Nothing here writes. Long id lists
are read in chunks of :data:`_IN_CHUNK`, so no statement binds more parameters than
a database accepts.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Result, Select, and_, func, select
from sqlalchemy.orm import Session, aliased

from voucherledger.accounts.models import Account
from voucherledger.ledger.models import JournalTransaction, LedgerAccount, Posting, Seal
from voucherledger.programmes import repository as programmes_repo
from voucherledger.programmes.models import Programme, ProgrammeParty
from voucherledger.redemptions.models import Redemption
from voucherledger.settlements.models import Settlement
from voucherledger.vouchers.models import Voucher

_IN_CHUNK = 500

# --- the journal -------------------------------------------------------------------------


def party_programme_ids(session: Session, account_id: str, kind: str) -> list[str] | None:
    """The programmes the account is a party of (funder, manager or auditor); None for
    kinds of account that are never a programme's party."""
    stmt = programmes_repo.party_programme_ids(account_id, kind)
    if stmt is None:
        return None
    return list(session.execute(stmt).scalars())


def get_transaction(session: Session, transaction_id: str) -> JournalTransaction | None:
    return session.get(JournalTransaction, transaction_id)


def list_transactions(
    session: Session,
    *,
    programme_ids: Collection[str],
    account: str | None,
    since: datetime | None,
    until: datetime | None,
    after: str | None,
    limit: int,
    after_sequence: int | None = None,
) -> list[JournalTransaction]:
    """The programmes' transactions by id, after the ``after`` id: at most ``limit``.
    ``account`` keeps those with a posting to it; ``since`` and ``until`` are inclusive.
    With ``after_sequence``: only sealed transactions, after that seal sequence, in
    sequence order."""
    stmt = select(JournalTransaction).where(JournalTransaction.programme_id.in_(programme_ids))
    if after_sequence is not None:
        stmt = stmt.join(Seal, Seal.transaction_id == JournalTransaction.id).where(
            Seal.sequence > after_sequence
        )
    if account is not None:
        stmt = stmt.where(
            JournalTransaction.id.in_(
                select(Posting.transaction_id).where(Posting.account_code == account)
            )
        )
    if since is not None:
        stmt = stmt.where(JournalTransaction.created_at >= since)
    if until is not None:
        stmt = stmt.where(JournalTransaction.created_at <= until)
    if after is not None:
        stmt = stmt.where(JournalTransaction.id > after)
    order = Seal.sequence if after_sequence is not None else JournalTransaction.id
    return list(session.execute(stmt.order_by(order).limit(limit)).scalars())


class PostingRow(NamedTuple):
    """One leg of a transaction; ``amount`` in minor units, positive a debit."""

    account: str
    amount: int
    currency: str


def postings_by_transaction(
    session: Session, transaction_ids: list[str]
) -> dict[str, list[PostingRow]]:
    """Each transaction's postings in the order they were written (every id a key)."""
    out: dict[str, list[PostingRow]] = {txn_id: [] for txn_id in transaction_ids}
    for start in range(0, len(transaction_ids), _IN_CHUNK):
        chunk = transaction_ids[start : start + _IN_CHUNK]
        for txn_id, account, amount, currency in session.execute(
            select(Posting.transaction_id, Posting.account_code, Posting.amount, Posting.currency)
            .where(Posting.transaction_id.in_(chunk))
            .order_by(Posting.id)
        ):
            out[txn_id].append(PostingRow(account, amount, currency))
    return out


def sequences_by_transaction(session: Session, transaction_ids: list[str]) -> dict[str, int]:
    """The seal sequence of each of the transactions that has been sealed."""
    out: dict[str, int] = {}
    for start in range(0, len(transaction_ids), _IN_CHUNK):
        chunk = transaction_ids[start : start + _IN_CHUNK]
        for txn_id, sequence in session.execute(
            select(Seal.transaction_id, Seal.sequence).where(Seal.transaction_id.in_(chunk))
        ):
            out[txn_id] = sequence
    return out


def get_ledger_account(session: Session, code: str) -> LedgerAccount | None:
    return session.get(LedgerAccount, code)


def count_transactions(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(JournalTransaction)).scalar_one())


# --- the open-standard exports -------------------------------------------------------------


def programmes_by_id(session: Session, programme_ids: Collection[str]) -> dict[str, Programme]:
    """Those of the programmes that exist, by id."""
    return {
        programme.id: programme
        for programme in session.execute(
            select(Programme).where(Programme.id.in_(programme_ids))
        ).scalars()
    }


def list_accounts(session: Session, account_ids: Collection[str]) -> list[Account]:
    """Those of the accounts that exist, in no particular order."""
    return list(session.execute(select(Account).where(Account.id.in_(account_ids))).scalars())


def account_name(session: Session, account_id: str) -> str:
    """The name of an account that must exist."""
    return session.execute(select(Account.name).where(Account.id == account_id)).scalar_one()


def manager_names(session: Session, programme_id: str) -> list[str]:
    """The names of the programme's managers, by account id."""
    return list(
        session.execute(
            select(Account.name)
            .join(ProgrammeParty, ProgrammeParty.account_id == Account.id)
            .where(ProgrammeParty.programme_id == programme_id, ProgrammeParty.role == "manager")
            .order_by(Account.id)
        ).scalars()
    )


def _iati_postings_query(
    programme_id: str, kinds: Collection[str], since: datetime | None, until: datetime | None
) -> Select[str, str, datetime, str, int, str, str, str, str]:
    txn, posting = JournalTransaction, Posting
    voucher, group = aliased(Voucher), aliased(Account)
    settlement, supplier = aliased(Settlement), aliased(Account)
    stmt = (
        select(
            txn.id,
            txn.kind,
            txn.created_at,
            posting.account_code,
            posting.amount,
            posting.currency,
            voucher.id,
            group.name,
            supplier.name,
        )
        .select_from(txn)
        .join(posting, posting.transaction_id == txn.id)
        .outerjoin(
            voucher,
            and_(
                txn.kind == "issue",
                posting.amount > 0,
                voucher.id == func.substr(posting.account_code, len("voucher:") + 1),
            ),
        )
        .outerjoin(group, group.id == voucher.group_id)
        .outerjoin(
            settlement,
            and_(
                txn.kind == "settle",
                settlement.programme_id == programme_id,
                settlement.transaction_id == txn.id,
            ),
        )
        .outerjoin(supplier, supplier.id == settlement.supplier_id)
        .where(txn.programme_id == programme_id, txn.kind.in_(kinds))
        .order_by(txn.created_at, txn.id, posting.id)
    )
    if since is not None:
        stmt = stmt.where(txn.created_at >= since)
    if until is not None:
        stmt = stmt.where(txn.created_at < until)
    return stmt


def stream_iati_postings(
    session: Session,
    programme_id: str,
    *,
    kinds: Collection[str],
    since: datetime | None,
    until: datetime | None,
    yield_per: int,
) -> Result[str, str, datetime, str, int, str, str, str, str]:
    """Every posting of the programme's transactions of those kinds in ``[since,
    until)``, in journal order, from a server-side cursor read ``yield_per`` rows at a
    time: (transaction id, kind, time, account, amount, currency, voucher id, group
    name, supplier name). The last three are the voucher and group of an issue's
    voucher posting and the supplier of a settlement, and null on every other row
    (outer joins, which the column types do not show)."""
    return session.execute(
        _iati_postings_query(programme_id, kinds, since, until).execution_options(
            yield_per=yield_per
        )
    )


def vouchers_with_groups(
    session: Session,
    programme_id: str,
    *,
    after: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[tuple[Voucher, Account]]:
    """Up to ``limit`` of the programme's vouchers issued in ``[since, until)``, by id
    after the ``after`` id, each with its group's account."""
    group = aliased(Account)
    stmt = (
        select(Voucher, group)
        .join(group, group.id == Voucher.group_id)
        .where(Voucher.programme_id == programme_id)
        .order_by(Voucher.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Voucher.id > after)
    if since is not None:
        stmt = stmt.where(Voucher.created_at >= since)
    if until is not None:
        stmt = stmt.where(Voucher.created_at < until)
    return [(voucher, account) for voucher, account in session.execute(stmt)]


class SettledClaims(NamedTuple):
    """What one settlement paid for the claims on one voucher: their net amount
    (claimed minus refunded, minor units), which may be zero."""

    voucher_id: str
    settlement_id: str
    settled_at: datetime
    supplier_id: str
    supplier_name: str
    net_amount: int


def settled_claims(
    session: Session, voucher_ids: list[str], *, until: datetime | None
) -> list[SettledClaims]:
    """Per voucher and settlement paid (approved) before ``until``, the net of the
    voucher's claims it paid; by voucher, then settlement time and id. A proposed
    settlement has paid nothing yet."""
    supplier = aliased(Account)
    net = func.sum(Redemption.amount - Redemption.refunded_amount)
    stmt = (
        select(
            Redemption.voucher_id,
            Settlement.id,
            Settlement.approved_at,
            Settlement.supplier_id,
            supplier.name,
            net,
        )
        .join(Settlement, Settlement.id == Redemption.settlement_id)
        .join(supplier, supplier.id == Settlement.supplier_id)
        .where(Redemption.voucher_id.in_(voucher_ids), Settlement.status == "settled")
        .group_by(
            Redemption.voucher_id,
            Settlement.id,
            Settlement.approved_at,
            Settlement.supplier_id,
            supplier.name,
        )
        .order_by(Redemption.voucher_id, Settlement.approved_at, Settlement.id)
    )
    if until is not None:
        stmt = stmt.where(Settlement.approved_at < until)
    return [
        # approved_at is set on every settled settlement
        SettledClaims(voucher_id, sid, cast(datetime, at), supplier_id, name, int(amount or 0))
        for voucher_id, sid, at, supplier_id, name, amount in session.execute(stmt)
    ]
