"""The database itself refuses what ``ledger.post`` never does (guarantees 1, 2, 3).

Every statement here bypasses the ledger code and the ORM: raw SQL on a plain
connection, as a buggy migration, a careless script or an operator would issue it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import SIGNER, journal_counts, open_chart, transfer
from voucherledger.ledger.sealer import seal_pending

REFUSED = "append-only"


@pytest.fixture
def sealed_ledger(session_factory: sessionmaker[Session]) -> str:
    """Two sealed transactions; returns the id of the first."""
    open_chart(session_factory, ["programme:p1:unissued", "voucher:v1"])
    first = transfer(session_factory, "funder:f1", "programme:p1:unissued", 1_000, kind="deposit")
    transfer(session_factory, "programme:p1:unissued", "voucher:v1", 400, kind="issue")
    assert seal_pending(session_factory, SIGNER) == 2
    return first.transaction_id


def _refused(engine: Engine, sql: str, message: str = REFUSED) -> None:
    """Run ``sql`` in its own transaction; it must fail and change nothing."""
    with engine.connect() as connection:
        before = journal_counts(Session(bind=connection))
        connection.rollback()
        with pytest.raises(DBAPIError, match=message):
            connection.exec_driver_sql(sql)
        connection.rollback()
        assert journal_counts(Session(bind=connection)) == before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_transactions SET memo = 'edited'",
        "UPDATE ledger_transactions SET created_at = created_at",
        "DELETE FROM ledger_transactions",
        "UPDATE ledger_postings SET amount = amount * 2",
        "UPDATE ledger_postings SET account_code = 'voucher:v1'",
        "DELETE FROM ledger_postings",
        "UPDATE ledger_seals SET hash = '" + "0" * 64 + "'",
        "DELETE FROM ledger_seals",
        "UPDATE ledger_seal_blocks SET signature = 'forged'",
        "DELETE FROM ledger_seal_blocks",
        "DELETE FROM ledger_accounts WHERE code = 'voucher:v1'",
    ],
)
def test_the_journal_refuses_update_and_delete(
    engine: Engine, sealed_ledger: str, sql: str
) -> None:
    _refused(engine, sql)


def test_the_refusal_covers_a_single_row_too(engine: Engine, sealed_ledger: str) -> None:
    _refused(engine, f"DELETE FROM ledger_transactions WHERE id = '{sealed_ledger}'")
    _refused(
        engine,
        f"UPDATE ledger_postings SET amount = 1 "
        f"WHERE transaction_id = '{sealed_ledger}' AND amount > 0",
    )


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_accounts SET currency = 'USD' WHERE code = 'voucher:v1'",
        "UPDATE ledger_accounts SET may_go_negative = TRUE WHERE code = 'voucher:v1'",
        "UPDATE ledger_accounts SET code = 'voucher:v9' WHERE code = 'programme:p1:unissued'",
    ],
)
def test_the_terms_of_a_ledger_account_are_fixed(
    engine: Engine, sealed_ledger: str, sql: str
) -> None:
    with engine.connect() as connection:
        with pytest.raises(DBAPIError, match=r"refused|fixed"):
            connection.exec_driver_sql(sql)
        connection.rollback()
        row = connection.exec_driver_sql(
            "SELECT currency, may_go_negative FROM ledger_accounts WHERE code = 'voucher:v1'"
        ).one()
    assert (row[0], bool(row[1])) == ("EUR", False)


def test_the_balance_of_an_account_may_still_change(engine: Engine, sealed_ledger: str) -> None:
    """The trigger guards the account's terms only: the current balance is not frozen
    (this is what ``ledger.post`` does on every write)."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE ledger_accounts SET balance = balance + 0 WHERE code = 'voucher:v1'"
        )


def test_truncate_is_refused_on_postgresql(
    pg_only: str, engine: Engine, sealed_ledger: str
) -> None:
    for table in (
        "ledger_transactions",
        "ledger_postings",
        "ledger_seals",
        "ledger_seal_blocks",
        "ledger_accounts",
    ):
        _refused(engine, f"TRUNCATE {table} CASCADE")


@pytest.mark.parametrize(("code", "balance"), [("voucher:v1", 400), ("programme:p1:unissued", 600)])
def test_the_no_overdraft_check_refuses_a_negative_balance(
    engine: Engine, sealed_ledger: str, code: str, balance: int
) -> None:
    with engine.connect() as connection:
        with pytest.raises(DBAPIError, match="no_overdraft"):
            connection.exec_driver_sql(
                f"UPDATE ledger_accounts SET balance = -1 WHERE code = '{code}'"
            )
        connection.rollback()
        assert (
            connection.exec_driver_sql(
                f"SELECT balance FROM ledger_accounts WHERE code = '{code}'"
            ).scalar()
            == balance
        )


def test_an_external_account_may_go_negative(engine: Engine, sealed_ledger: str) -> None:
    """The CHECK is not simply ``balance >= 0``: it follows ``may_go_negative``."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE ledger_accounts SET balance = balance - 1 WHERE code = 'funder:f1'"
        )


# --- the deferred balance trigger (PostgreSQL) --------------------------------------

_INSERT_TXN = (
    "INSERT INTO ledger_transactions (id, kind, created_at, metadata) "
    "VALUES ('txn_raw', 'transfer', now(), '{}')"
)


def _insert_posting(
    connection: Connection, account: str, amount: int, currency: str = "EUR"
) -> None:
    connection.execute(
        text(
            "INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, "
            "created_at) VALUES ('txn_raw', :account, :amount, :currency, now())"
        ),
        {"account": account, "amount": amount, "currency": currency},
    )


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        ([("funder:f1", -500), ("programme:p1:unissued", 499)], "does not balance"),
        ([("programme:p1:unissued", 500)], "at least two"),
        ([("funder:f1", -5), ("programme:p1:unissued", 5), ("funder:f1", -1)], "does not balance"),
    ],
    ids=["off-by-one", "one-posting", "three-legs"],
)
def test_an_unbalanced_transaction_is_refused_at_commit(
    pg_only: str,
    engine: Engine,
    session_factory: sessionmaker[Session],
    legs: list[tuple[str, int]],
    message: str,
) -> None:
    open_chart(session_factory, ["programme:p1:unissued"])
    with engine.connect() as connection:
        connection.exec_driver_sql(_INSERT_TXN)
        for account, amount in legs:
            _insert_posting(connection, account, amount)  # every INSERT is accepted...
        with pytest.raises(DBAPIError, match=message):
            connection.commit()  # ...the deferred trigger refuses at COMMIT
        connection.rollback()
        assert connection.exec_driver_sql("SELECT count(*) FROM ledger_transactions").scalar() == 0


def test_a_balanced_transaction_in_raw_sql_commits(
    pg_only: str, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """The other side of the trigger: it is not refusing every raw insert, and it sums
    per currency (two balanced currencies in one transaction are fine)."""
    open_chart(session_factory, ["programme:p1:unissued"])
    open_chart(session_factory, ["programme:p2:unissued"], currency="USD", external=("funder:f2",))
    with engine.connect() as connection:
        connection.exec_driver_sql(_INSERT_TXN)
        _insert_posting(connection, "funder:f1", -500)
        _insert_posting(connection, "programme:p1:unissued", 500)
        _insert_posting(connection, "funder:f2", -7, "USD")
        _insert_posting(connection, "programme:p2:unissued", 7, "USD")
        connection.commit()
        assert (
            connection.exec_driver_sql(
                "SELECT count(*) FROM ledger_postings WHERE transaction_id = 'txn_raw'"
            ).scalar()
            == 4
        )


def test_postings_that_balance_only_across_currencies_are_refused(
    pg_only: str, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    open_chart(session_factory, ["programme:p1:unissued"])
    open_chart(session_factory, ["programme:p2:unissued"], currency="USD", external=("funder:f2",))
    with engine.connect() as connection:
        connection.exec_driver_sql(_INSERT_TXN)
        _insert_posting(connection, "funder:f1", -500)
        _insert_posting(connection, "programme:p2:unissued", 500, "USD")
        with pytest.raises(DBAPIError, match="does not balance"):
            connection.commit()


# A row that replaces one already written: SQLite's INSERT OR REPLACE deletes the old
# row without firing DELETE triggers unless ``recursive_triggers`` is on, and an
# upsert updates it. Either would rewrite history the triggers exist to protect.
_REPLACING = {
    "sqlite": [
        "INSERT OR REPLACE INTO ledger_seal_blocks SELECT height, first_sequence, "
        "last_sequence, prev_hash, 'forged', sealed_at, signature, public_key "
        "FROM ledger_seal_blocks WHERE height = 1",
        "INSERT OR REPLACE INTO ledger_transactions SELECT id, kind, programme_id, actor, "
        "idempotency_key, created_at, 'edited', metadata FROM ledger_transactions",
        "INSERT OR REPLACE INTO ledger_accounts (code, currency, may_go_negative, balance, "
        "created_at) SELECT code, currency, 1, 0, created_at FROM ledger_accounts "
        "WHERE code = 'voucher:v1'",
        "REPLACE INTO ledger_signing_keys SELECT * FROM ledger_signing_keys",
    ],
    "postgresql": [
        "INSERT INTO ledger_seal_blocks SELECT * FROM ledger_seal_blocks WHERE height = 1 "
        "ON CONFLICT (height) DO UPDATE SET hash = 'forged'",
        "INSERT INTO ledger_signing_keys SELECT * FROM ledger_signing_keys "
        "ON CONFLICT (position) DO UPDATE SET first_height = 99",
    ],
}


@pytest.mark.parametrize("index", range(4))
def test_a_row_cannot_be_replaced_by_an_insert(
    engine: Engine, backend: str, sealed_ledger: str, index: int
) -> None:
    statements = _REPLACING[backend]
    if index >= len(statements):
        pytest.skip(f"{backend} has {len(statements)} ways to replace a row")
    _refused(engine, statements[index], "append-only|refused|fixed")
