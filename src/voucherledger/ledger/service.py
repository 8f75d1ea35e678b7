"""The one write entry point of the ledger, and its reads.

:func:`post` is the only way value moves. In one database transaction — the
caller's — it:

1. refuses malformed or unbalanced postings (guarantee 2, checked in code; on
   PostgreSQL a deferred constraint trigger checks again at COMMIT);
2. inserts the journal transaction, its postings and its seal-queue entry; an
   idempotency key already used makes this a replay that writes nothing
   (guarantee 4);
3. applies each account's net change with one guarded ``UPDATE ... SET balance =
   balance + :change``, accounts in sorted code order so concurrent posters
   cannot deadlock; an account that may not go negative and would is refused
   (guarantee 3; a CHECK constraint backs the guard).

On any :class:`~voucherledger.ledger.errors.LedgerError` the caller must roll
back. The write path talks to the DB-API cursor directly (its statements, per
database, are in :mod:`voucherledger.ledger.sql`): it runs on every claim, and
the layers above the driver cost more than the database does here. The reads
and the off-path writes (opening accounts one by one) use the ORM.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from voucherledger.core.db import utcnow
from voucherledger.core.ids import new_id
from voucherledger.core.rawsql import Raw
from voucherledger.ledger import errors, sql
from voucherledger.ledger.canonical import MAX_SAFE_INTEGER, check_canonical_value
from voucherledger.ledger.models import (
    TRANSACTION_KINDS,
    JournalTransaction,
    LedgerAccount,
    Posting,
    TransactionKind,
)

_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Leg:
    """One posting to write: ``amount`` minor units, signed from the account's side."""

    account: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Posted:
    transaction_id: str
    created_at: datetime
    replayed: bool
    # The new balance of every account the transaction changed (empty on a replay).
    balances: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountBalance:
    account: str
    currency: str
    balance: int


@dataclass(frozen=True, slots=True)
class TrialBalance:
    accounts: list[AccountBalance]
    totals: dict[str, int]


def _validate(
    kind: TransactionKind, legs: Sequence[Leg], metadata: Mapping[str, Any] | None
) -> dict[tuple[str, str], int]:
    """Check the postings and return each (account, currency)'s net change."""
    if kind not in TRANSACTION_KINDS:
        raise errors.InvalidTransaction(f"unknown transaction kind {kind!r}")
    if len(legs) < 2:
        raise errors.InvalidTransaction("a transaction has at least two postings")
    per_currency: dict[str, int] = defaultdict(int)
    net: dict[tuple[str, str], int] = defaultdict(int)
    for leg in legs:
        if type(leg.amount) is not int or leg.amount == 0:
            raise errors.InvalidTransaction(f"posting amount {leg.amount!r} is not a non-zero int")
        if abs(leg.amount) > MAX_SAFE_INTEGER:
            raise errors.InvalidTransaction(f"posting amount {leg.amount} is too large")
        if not _CURRENCY.match(leg.currency):
            raise errors.InvalidTransaction(f"currency {leg.currency!r} is not an ISO 4217 code")
        if not leg.account:
            raise errors.InvalidTransaction("posting without an account")
        per_currency[leg.currency] += leg.amount
        net[(leg.account, leg.currency)] += leg.amount
    unbalanced = {cur: total for cur, total in per_currency.items() if total != 0}
    if unbalanced:
        raise errors.Unbalanced(f"postings do not sum to zero: {unbalanced}")
    if metadata is not None:
        try:
            check_canonical_value(dict(metadata))
        except ValueError as exc:
            raise errors.InvalidTransaction(str(exc)) from exc
    return net


# ``created_by`` of what the service does on its own, no person or key asking.
SYSTEM = "system"


def _with_created_by(
    metadata: Mapping[str, Any] | None, created_by: str | None
) -> Mapping[str, Any] | None:
    if created_by is None:
        return metadata
    if not isinstance(created_by, str) or not 0 < len(created_by) <= 40:
        raise errors.InvalidTransaction(f"created_by {created_by!r} is not an id of 1-40 chars")
    if metadata is not None and "created_by" in metadata:
        raise errors.InvalidTransaction("metadata carries created_by: pass it as the parameter")
    return {**(metadata or {}), "created_by": created_by}


def post(
    session: Session,
    *,
    kind: TransactionKind,
    legs: Sequence[Leg],
    programme_id: str | None = None,
    actor: str | None = None,
    idempotency_key: str | None = None,
    memo: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    created_by: str | None = None,
    now: datetime | None = None,
) -> Posted:
    """Write one balanced journal transaction in the caller's database transaction.

    ``actor`` is the account (party) the transaction is for; ``created_by`` is who
    did it — a member id (``mem_…``) for a person, an account key id (``key_…``) for
    a machine, or :data:`SYSTEM` for the service's own work (sweeps, hold timeouts).
    It goes into the metadata as ``"created_by"``, so the seal chain covers it."""
    metadata = _with_created_by(metadata, created_by)
    net = _validate(kind, legs, metadata)
    txn_id = new_id("txn")
    created_at = now or utcnow()
    with Raw(session) as db:
        row = sql.JournalRow(
            txn_id,
            kind,
            programme_id,
            actor,
            idempotency_key,
            db.bind(created_at),
            memo,
            json.dumps(dict(metadata or {}), sort_keys=True, separators=(",", ":")),
        )
        path = sql.write_path(db.dialect, len(legs))
        applied = path.write(db, row, legs, net)
    if applied is None:
        if idempotency_key is None:
            raise RuntimeError("journal insert without an idempotency key wrote nothing")
        return _replay(session, idempotency_key, kind, legs)
    if applied.refused is not None:
        account, currency = applied.refused
        _explain_refusal(session, account, currency, net[applied.refused])
    return Posted(txn_id, created_at, replayed=False, balances=applied.balances)


def _replay(session: Session, key: str, kind: str, legs: Sequence[Leg]) -> Posted:
    existing = session.execute(
        select(JournalTransaction.id, JournalTransaction.kind, JournalTransaction.created_at).where(
            JournalTransaction.idempotency_key == key
        )
    ).one()
    stored = session.execute(
        select(Posting.account_code, Posting.amount, Posting.currency).where(
            Posting.transaction_id == existing.id
        )
    ).all()
    same = existing.kind == kind and sorted(
        (row.account_code, row.amount, row.currency) for row in stored
    ) == sorted((leg.account, leg.amount, leg.currency) for leg in legs)
    if not same:
        raise errors.IdempotencyConflict(key)
    return Posted(existing.id, existing.created_at, replayed=True)


def _explain_refusal(session: Session, account: str, currency: str, change: int) -> None:
    row = session.execute(
        select(LedgerAccount.currency, LedgerAccount.balance).where(LedgerAccount.code == account)
    ).one_or_none()
    if row is None:
        raise errors.UnknownAccount(account)
    if row.currency != currency:
        raise errors.CurrencyMismatch(account, row.currency, currency)
    raise errors.InsufficientFunds(account, row.balance, change)


def open_account(
    session: Session, code: str, currency: str, *, may_go_negative: bool = False
) -> None:
    """Create a ledger account with a zero balance; opening it again is a no-op."""
    open_accounts(session, [(code, currency, may_go_negative)])


def open_accounts(
    session: Session, accounts: Iterable[tuple[str, str, bool]], *, new: bool = False
) -> None:
    """Open ``(code, currency, may_go_negative)`` accounts. With ``new=True`` the caller
    promises the codes were never used (fresh ids): no look-up, a plain bulk insert."""
    wanted = list(accounts)
    if not wanted:
        return
    for _code, currency, _negative in wanted:
        if not _CURRENCY.match(currency):
            raise errors.InvalidTransaction(f"currency {currency!r} is not ISO 4217")
    if new:
        with Raw(session) as db:
            sql.insert_accounts(db, wanted, db.bind(utcnow()))
        return
    codes = [code for code, _currency, _negative in wanted]
    existing: dict[str, tuple[str, bool]] = {}
    for start in range(0, len(codes), 500):
        chunk = codes[start : start + 500]
        for code, currency, negative in session.execute(
            select(LedgerAccount.code, LedgerAccount.currency, LedgerAccount.may_go_negative).where(
                LedgerAccount.code.in_(chunk)
            )
        ):
            existing[code] = (currency, negative)
    now = utcnow()
    new_rows = []
    for code, currency, negative in wanted:
        if code in existing:
            if existing[code] != (currency, negative):
                raise errors.InvalidTransaction(f"ledger account {code!r} exists with other terms")
            continue
        new_rows.append(
            {
                "code": code,
                "currency": currency,
                "may_go_negative": negative,
                "balance": 0,
                "created_at": now,
            }
        )
    if new_rows:
        session.execute(insert(LedgerAccount), new_rows)


# --- reads -------------------------------------------------------------------------


def key_used(session: Session, idempotency_key: str) -> bool:
    """Whether a journal transaction was written under ``idempotency_key`` (one look-up
    on its unique index). Journal keys are never purged, unlike the API's records."""
    stmt = select(JournalTransaction.id).where(
        JournalTransaction.idempotency_key == idempotency_key
    )
    return session.execute(stmt.limit(1)).first() is not None


def balance(session: Session, account: str, *, for_update: bool = False) -> int:
    """The current balance: one primary-key read, whatever the size of the journal.

    ``for_update`` locks the account row until the caller's transaction ends, for a
    read-then-post (moving "whatever is left") that must not race other posters."""
    stmt = select(LedgerAccount.balance).where(LedgerAccount.code == account)
    if for_update:
        stmt = stmt.with_for_update()
    value = session.execute(stmt).scalar_one_or_none()
    if value is None:
        raise errors.UnknownAccount(account)
    return value


def balances(session: Session, accounts: Iterable[str]) -> dict[str, int]:
    wanted = list(accounts)
    found: dict[str, int] = {}
    for code, value in session.execute(
        select(LedgerAccount.code, LedgerAccount.balance).where(LedgerAccount.code.in_(wanted))
    ):
        found[code] = value
    return {code: found.get(code, 0) for code in wanted}


def balance_as_of(session: Session, account: str, as_of: datetime) -> int:
    """The sum of the account's postings made at or before ``as_of``."""
    if session.get(LedgerAccount, account) is None:
        raise errors.UnknownAccount(account)
    total = session.execute(
        select(func.coalesce(func.sum(Posting.amount), 0)).where(
            Posting.account_code == account, Posting.created_at <= as_of
        )
    ).scalar_one()
    return int(total)


def trial_balance(
    session: Session, *, programme_id: str | None = None, as_of: datetime | None = None
) -> TrialBalance:
    """Every account's balance (from the programme's transactions only, if given).

    Sums to zero per currency: every transaction does.
    """
    if programme_id is None and as_of is None:
        rows = session.execute(
            select(LedgerAccount.code, LedgerAccount.currency, LedgerAccount.balance).order_by(
                LedgerAccount.code
            )
        ).all()
    else:
        stmt = select(Posting.account_code, Posting.currency, func.sum(Posting.amount))
        if programme_id is not None:
            stmt = stmt.join(
                JournalTransaction, JournalTransaction.id == Posting.transaction_id
            ).where(JournalTransaction.programme_id == programme_id)
        if as_of is not None:
            stmt = stmt.where(Posting.created_at <= as_of)
        stmt = stmt.group_by(Posting.account_code, Posting.currency).order_by(Posting.account_code)
        rows = session.execute(stmt).all()
    accounts = [AccountBalance(code, currency, int(total)) for code, currency, total in rows]
    totals: dict[str, int] = defaultdict(int)
    for entry in accounts:
        totals[entry.currency] += entry.balance
    return TrialBalance(accounts, dict(totals))
