"""Ledger set-ups for tests: a small chart of accounts and a signer."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_SIGNING_KEY
from voucherledger import ledger
from voucherledger.core.db import transaction
from voucherledger.ledger.models import TransactionKind
from voucherledger.ledger.signing import Signer

SIGNER = Signer.from_seed(bytes.fromhex(TEST_SIGNING_KEY))


def open_chart(
    factory: sessionmaker[Session],
    codes: list[str],
    *,
    currency: str = "EUR",
    external: tuple[str, ...] = ("funder:f1",),
) -> None:
    """Open ``external`` (may go negative) and ``codes`` (may not) in one transaction."""
    with transaction(factory) as session:
        ledger.open_accounts(
            session,
            [(code, currency, True) for code in external]
            + [(code, currency, False) for code in codes],
        )


def transfer(
    factory: sessionmaker[Session],
    source: str,
    target: str,
    amount: int,
    *,
    kind: TransactionKind = "transfer",
    currency: str = "EUR",
    key: str | None = None,
) -> ledger.Posted:
    with transaction(factory) as session:
        return ledger.post(
            session,
            kind=kind,
            idempotency_key=key,
            legs=[ledger.Leg(source, -amount, currency), ledger.Leg(target, amount, currency)],
        )


# --- invariant checks shared by the property, concurrency and tamper tests ----------

JOURNAL_TABLES = (
    "ledger_transactions",
    "ledger_postings",
    "ledger_seal_queue",
    "ledger_seals",
    "ledger_seal_blocks",
)


def journal_counts(session: Session) -> dict[str, int]:
    """Row counts of the journal's tables, to show that a refusal or replay wrote nothing."""
    return {
        table: int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
        for table in JOURNAL_TABLES
    }


def account_balances(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT code, balance FROM ledger_accounts")).all()
    return {code: int(value) for code, value in rows}


def ledger_violations(session: Session) -> list[str]:
    """Every breach of guarantees 2, 3 and 6 visible in the database; empty when sound.

    Reads the tables with plain SQL rather than through the ledger's own reads, so a
    bug in those reads cannot hide a bug in the writes.
    """
    problems: list[str] = []
    for txn_id, currency, total in session.execute(
        text(
            "SELECT transaction_id, currency, sum(amount) FROM ledger_postings "
            "GROUP BY transaction_id, currency HAVING sum(amount) <> 0"
        )
    ):
        problems.append(f"transaction {txn_id} does not balance in {currency}: {total}")
    for txn_id, legs in session.execute(
        text(
            "SELECT t.id, count(p.id) FROM ledger_transactions t "
            "LEFT JOIN ledger_postings p ON p.transaction_id = t.id "
            "GROUP BY t.id HAVING count(p.id) < 2"
        )
    ):
        problems.append(f"transaction {txn_id} has {legs} posting(s)")
    for code, stored, computed in session.execute(
        text(
            "SELECT a.code, a.balance, coalesce(sum(p.amount), 0) FROM ledger_accounts a "
            "LEFT JOIN ledger_postings p ON p.account_code = a.code "
            "GROUP BY a.code, a.balance HAVING a.balance <> coalesce(sum(p.amount), 0)"
        )
    ):
        problems.append(f"account {code} balance {stored} != sum of its postings {computed}")
    for posting_id, code, currency, held in session.execute(
        text(
            "SELECT p.id, a.code, p.currency, a.currency FROM ledger_postings p "
            "JOIN ledger_accounts a ON a.code = p.account_code WHERE p.currency <> a.currency"
        )
    ):
        problems.append(f"posting {posting_id} to {code} is in {currency}, account holds {held}")
    for code, value in session.execute(
        text("SELECT code, balance FROM ledger_accounts WHERE NOT may_go_negative AND balance < 0")
    ):
        problems.append(f"account {code} may not go negative but holds {value}")
    totals = ledger.trial_balance(session).totals
    if any(totals.values()):
        problems.append(f"trial balance does not sum to zero: {totals}")
    return problems
