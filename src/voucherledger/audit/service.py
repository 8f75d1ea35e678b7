"""Who may read which part of the journal, and the reads themselves.

Funders, managers and auditors read the journal of the programmes they are parties
of; suppliers and groups read the balances of their own ledger accounts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from voucherledger import ledger
from voucherledger.audit import repository
from voucherledger.audit.schemas import (
    BalanceOut,
    CheckpointOut,
    PostingOut,
    TransactionList,
    TransactionOut,
    TrialBalanceLine,
    TrialBalanceOut,
)
from voucherledger.core.auth import Principal
from voucherledger.core.errors import Forbidden, NotFound
from voucherledger.core.pagination import split_page
from voucherledger.ledger.canonical import BLOCK_FORMAT
from voucherledger.ledger.models import JournalTransaction
from voucherledger.ledger.sealer import latest_block
from voucherledger.programmes import service as programmes
from voucherledger.vouchers import repository as vouchers_repo

READERS = frozenset({"funder", "manager", "auditor"})


def programme_scope(session: Session, principal: Principal, programme_id: str | None) -> list[str]:
    """The programmes a journal read covers: the one asked for (404 unless a party),
    or every programme the caller is a party of."""
    if programme_id is not None:
        programmes.access(session, principal, programme_id)
        return [programme_id]
    ids = repository.party_programme_ids(session, principal.account_id, principal.kind)
    if ids is None:
        raise Forbidden("Only a programme's funder, managers and auditors read its journal.")
    return ids


def _to_out(session: Session, txns: list[JournalTransaction]) -> list[TransactionOut]:
    ids = [t.id for t in txns]
    postings = repository.postings_by_transaction(session, ids)
    sequences = repository.sequences_by_transaction(session, ids)
    return [
        TransactionOut(
            id=t.id,
            sequence=sequences.get(t.id),
            kind=t.kind,
            programme_id=t.programme_id,
            actor=t.actor,
            created_by=t.meta.get("created_by"),
            created_at=t.created_at,
            memo=t.memo,
            metadata=t.meta,
            postings=[
                PostingOut(account=p.account, amount=p.amount, currency=p.currency)
                for p in postings[t.id]
            ],
        )
        for t in txns
    ]


def list_transactions(
    session: Session,
    principal: Principal,
    *,
    programme_id: str | None,
    account: str | None,
    since: datetime | None,
    until: datetime | None,
    after: str | None,
    limit: int,
    after_sequence: int | None = None,
) -> TransactionList:
    """A page of the journal: by id (``after``, a cursor), or, with ``after_sequence``,
    the sealed transactions after that seal sequence in sequence order (resumable: a
    transaction that commits late is sealed, so numbered, later)."""
    scope = programme_scope(session, principal, programme_id)
    # One row more than the page: whether there is a next page, without counting.
    rows = repository.list_transactions(
        session,
        programme_ids=scope,
        account=account,
        since=since,
        until=until,
        after=after,
        limit=limit + 1,
        after_sequence=after_sequence,
    )
    page, cursor = split_page(rows, limit)
    data = _to_out(session, page)
    if after_sequence is None:
        return TransactionList(data=data, next_cursor=cursor)
    last = data[-1].sequence if data else None
    return TransactionList(
        data=data,
        next_cursor=None,
        next_after_sequence=after_sequence if last is None else last,
    ).followed(cursor is not None)


def get_transaction(session: Session, principal: Principal, txn_id: str) -> TransactionOut:
    txn = repository.get_transaction(session, txn_id)
    if txn is None or txn.programme_id is None:
        raise NotFound(f"No transaction {txn_id}.")
    try:
        programmes.access(session, principal, txn.programme_id)
    except NotFound:
        raise NotFound(f"No transaction {txn_id}.") from None
    return _to_out(session, [txn])[0]


def _may_read_account(session: Session, principal: Principal, account: str) -> bool:
    """Parties read their programmes' accounts; suppliers, groups and funders their own."""
    parts = account.split(":")
    me = principal.account_id
    if parts[0] == "funder":
        return len(parts) == 3 and parts[1] == me and principal.kind == "funder"
    if parts[0] == "supplier" and len(parts) >= 3:
        if principal.kind == "supplier":
            return parts[1] == me
        return parts[2] == "payable" and len(parts) == 4 and _party(session, principal, parts[3])
    if parts[0] == "programme" and len(parts) == 3:
        return principal.kind in READERS and _party(session, principal, parts[1])
    if parts[0] == "voucher" and len(parts) in (2, 3):
        voucher = vouchers_repo.get(session, parts[1])
        if voucher is None:
            return False
        if principal.kind == "group":
            return voucher.group_id == me
        return principal.kind in READERS and _party(session, principal, voucher.programme_id)
    return False


def _party(session: Session, principal: Principal, programme_id: str) -> bool:
    try:
        programmes.access(session, principal, programme_id)
    except (NotFound, Forbidden):
        return False
    return True


def balance(
    session: Session, principal: Principal, account: str, as_of: datetime | None
) -> BalanceOut:
    row = repository.get_ledger_account(session, account)
    if row is None or not _may_read_account(session, principal, account):
        raise NotFound(f"No ledger account {account}.")
    value = (
        ledger.balance(session, account)
        if as_of is None
        else ledger.balance_as_of(session, account, as_of)
    )
    return BalanceOut(account=account, currency=row.currency, balance=value, as_of=as_of)


def trial_balance(
    session: Session, principal: Principal, programme_id: str | None, as_of: datetime | None
) -> TrialBalanceOut:
    if programme_id is None:
        if principal.kind not in ("admin", "auditor"):
            raise Forbidden("The whole ledger's trial balance is for operators.")
        if principal.kind == "auditor":
            raise Forbidden("Name the programme: auditors read the programmes granted to them.")
    else:
        programmes.access(session, principal, programme_id)
    result = ledger.trial_balance(session, programme_id=programme_id, as_of=as_of)
    return TrialBalanceOut(
        programme_id=programme_id,
        as_of=as_of,
        accounts=[
            TrialBalanceLine(account=a.account, currency=a.currency, balance=a.balance)
            for a in result.accounts
        ],
        totals=result.totals,
    )


def transaction_count(session: Session) -> int:
    return repository.count_transactions(session)


def checkpoint(session: Session) -> CheckpointOut:
    """The latest seal block, as the checkpoint route shows it."""
    block = latest_block(session)
    if block is None:
        raise NotFound("Nothing has been sealed yet.")
    return CheckpointOut(
        format=BLOCK_FORMAT,
        height=block.height,
        first_sequence=block.first_sequence,
        last_sequence=block.last_sequence,
        prev_hash=block.prev_hash,
        hash=block.hash,
        sealed_at=block.sealed_at,
        signature=block.signature,
        public_key=block.public_key,
    )
