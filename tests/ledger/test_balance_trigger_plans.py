"""The deferred balance trigger reads a transaction's own postings, never the journal.

The trigger runs on every posting of every claim. Its look-ups are planned once per
connection (plpgsql keeps generic plans), from the statistics ANALYZE left. After a
batch issuance those statistics say "a few transactions own every posting", and a
generic plan of "is there a later posting of this transaction" read the whole of
``ledger_postings``: a claim's cost grew with the size of the journal (issue 14). A
sequential scan of the table inside the trigger is what these tests refuse; the
trigger's rule itself is tested in ``test_append_only.py``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import open_chart
from voucherledger import ledger
from voucherledger.core.db import transaction

BATCH = 1_500  # postings of the one large transaction that skews the statistics
LATER = 800  # two-leg transactions written after ANALYZE (the table outgrows its stats)


def _skewed_journal(engine: Engine, factory: sessionmaker[Session]) -> None:
    """A journal whose statistics come from one batch, then grown past them."""
    vouchers = [f"voucher:v{i}" for i in range(BATCH - 1)]
    open_chart(factory, ["programme:p1:unissued", *vouchers])
    with transaction(factory) as session:
        ledger.post(
            session,
            kind="issue",
            legs=[
                ledger.Leg("funder:f1", -(BATCH - 1), "EUR"),
                *(ledger.Leg(code, 1, "EUR") for code in vouchers),
            ],
        )
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE ledger_postings")
        connection.commit()
        # Grown in raw SQL, with the trigger on (each transaction balanced), in one
        # commit: the planner sees the new pages, ANALYZE has not seen the new ids.
        connection.exec_driver_sql(
            "INSERT INTO ledger_transactions (id, kind, created_at, metadata) "
            f"SELECT 'txn_later_' || g, 'transfer', now(), '{{}}' "
            f"FROM generate_series(1, {LATER}) AS g"
        )
        connection.exec_driver_sql(
            "INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, "
            "created_at) SELECT 'txn_later_' || g, 'funder:f1', s, 'EUR', now() "
            f"FROM generate_series(1, {LATER}) AS g, (VALUES (1), (-1)) AS v(s)"
        )
        connection.commit()


def _trigger_scans(connection: Connection) -> tuple[int, int]:
    """(sequential, index) scans of ledger_postings in this transaction so far."""
    row = connection.execute(
        text(
            "SELECT coalesce(seq_scan, 0), coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables "
            "WHERE relname = 'ledger_postings'"
        )
    ).one()
    return int(row[0]), int(row[1])


def _claim_like(connection: Connection, txn_id: str, amount: int) -> None:
    connection.execute(
        text(
            "INSERT INTO ledger_transactions (id, kind, created_at, metadata) "
            "VALUES (:id, 'transfer', now(), '{}')"
        ),
        {"id": txn_id},
    )
    connection.execute(
        text(
            "INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, "
            "created_at) VALUES (:id, 'funder:f1', :out, 'EUR', now()), "
            "(:id, 'programme:p1:unissued', :in, 'EUR', now())"
        ),
        {"id": txn_id, "out": -amount, "in": amount},
    )


def test_the_trigger_reads_by_index_when_a_batch_skews_the_statistics(
    pg_only: str, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    _skewed_journal(engine, session_factory)
    with engine.connect() as connection:
        # The plans a long-lived pool connection ends up with (plpgsql switches to a
        # generic plan after five executions; forcing it here needs no warm-up).
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        for n in range(3):
            _claim_like(connection, f"txn_claim_{n}", 5)
            before = _trigger_scans(connection)
            connection.exec_driver_sql("SET CONSTRAINTS ledger_postings_balanced IMMEDIATE")
            seq, idx = _trigger_scans(connection)
            connection.exec_driver_sql("SET CONSTRAINTS ledger_postings_balanced DEFERRED")
            assert seq == before[0], "the balance trigger scanned the whole postings table"
            assert idx > before[1], "the balance trigger read no index"
            connection.commit()


def test_the_trigger_still_refuses_with_generic_plans(
    pg_only: str, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """The same refusals as ``test_append_only.py``, under the plans of a warm pool."""
    _skewed_journal(engine, session_factory)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        _claim_like(connection, "txn_ok", 3)
        connection.commit()
        connection.execute(
            text(
                "INSERT INTO ledger_transactions (id, kind, created_at, metadata) "
                "VALUES ('txn_bad', 'transfer', now(), '{}')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, "
                "created_at) VALUES ('txn_bad', 'funder:f1', -3, 'EUR', now()), "
                "('txn_bad', 'programme:p1:unissued', 2, 'EUR', now())"
            )
        )
        with pytest.raises(DBAPIError, match="does not balance: -1 EUR"):
            connection.commit()
        connection.rollback()
        connection.execute(
            text(
                "INSERT INTO ledger_transactions (id, kind, created_at, metadata) "
                "VALUES ('txn_one', 'transfer', now(), '{}')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, "
                "created_at) VALUES ('txn_one', 'funder:f1', 3, 'EUR', now())"
            )
        )
        with pytest.raises(DBAPIError, match="has 1 posting"):
            connection.commit()
