"""The PostgreSQL write path of :func:`voucherledger.ledger.post` for large transactions.

A batch issuance is one transaction with a posting per voucher: thousands of
legs. Statement-per-leg would be thousands of round trips, so the postings go
in as arrays (``unnest``) and the balances change in one guarded ``UPDATE ...
FROM unnest(...)``, after the rows were locked in sorted order by one ``SELECT
... ORDER BY code FOR UPDATE``. Same guarantees, a fixed number of statements.

The ledger accounts such a batch opens (two per voucher) go in the same way:
one ``INSERT ... SELECT FROM unnest(...)`` instead of a statement per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

_INSERT_TXN = (
    "INSERT INTO ledger_transactions "
    "(id, kind, programme_id, actor, idempotency_key, created_at, memo, metadata) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, CAST(%s AS JSON)) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
_INSERT_POSTINGS = (
    "INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, created_at) "
    "SELECT %s, u.account_code, u.amount, u.currency, %s "
    "FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS u(account_code, amount, currency)"
)
_QUEUE = "INSERT INTO ledger_seal_queue (transaction_id) VALUES (%s)"
_INSERT_ACCOUNTS = (
    "INSERT INTO ledger_accounts (code, currency, may_go_negative, balance, created_at) "
    "SELECT u.code, u.currency, u.may_go_negative, 0, %s "
    "FROM unnest(%s::text[], %s::text[], %s::boolean[]) AS u(code, currency, may_go_negative)"
)
_LOCK = "SELECT code FROM ledger_accounts WHERE code = ANY(%s) ORDER BY code FOR UPDATE"
_UPDATE = (
    "UPDATE ledger_accounts AS a SET balance = a.balance + u.change "
    "FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS u(code, currency, change) "
    "WHERE a.code = u.code AND a.currency = u.currency "
    "AND (a.may_go_negative OR a.balance + u.change >= 0) "
    "RETURNING a.code, u.currency, a.balance"
)


def insert_transaction(
    cursor: Any,
    row: Sequence[Any],
    txn_id: str,
    stamp: datetime,
    legs: Sequence[tuple[str, int, str]],
) -> bool:
    """Insert the journal row, its postings and its queue entry; False on a replayed key."""
    cursor.execute(_INSERT_TXN, row)
    if cursor.fetchone() is None:
        return False
    cursor.execute(
        _INSERT_POSTINGS,
        (
            txn_id,
            stamp,
            [leg[0] for leg in legs],
            [leg[1] for leg in legs],
            [leg[2] for leg in legs],
        ),
    )
    cursor.execute(_QUEUE, (txn_id,))
    return True


def insert_accounts(
    connection: Connection, accounts: Sequence[tuple[str, str, bool]], stamp: datetime
) -> None:
    """Insert new ``(code, currency, may_go_negative)`` accounts with a zero balance, in
    one statement; ``stamp`` is their naive UTC ``created_at``. A code already in use
    fails the primary key, as a plain INSERT would."""
    connection.exec_driver_sql(
        _INSERT_ACCOUNTS,
        (
            stamp,
            [account[0] for account in accounts],
            [account[1] for account in accounts],
            [account[2] for account in accounts],
        ),
    )


def apply_changes(
    cursor: Any, net: dict[tuple[str, str], int]
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Lock the accounts in sorted order and apply every net change in one guarded
    UPDATE. Returns the new balances and the (account, currency) pairs the guard
    refused, sorted."""
    keys = sorted(net)
    cursor.execute(_LOCK, (sorted({account for account, _ in keys}),))
    cursor.fetchall()
    cursor.execute(
        _UPDATE,
        (
            [account for account, _ in keys],
            [currency for _, currency in keys],
            [net[key] for key in keys],
        ),
    )
    balances: dict[str, int] = {}
    done: set[tuple[str, str]] = set()
    for code, currency, balance in cursor.fetchall():
        done.add((code, currency))
        balances[code] = balance
    return balances, [key for key in keys if key not in done]
