"""Every statement of the ledger's write path, SQLite and PostgreSQL side by side.

:func:`voucherledger.ledger.post` writes a journal transaction in two steps, each
a fixed, small number of round trips on the raw path
(:mod:`voucherledger.core.rawsql`, ``?`` placeholders):

1. **insert** the journal row, its postings and its seal-queue entry. The journal
   INSERT is ``ON CONFLICT (idempotency_key) DO NOTHING``: when it writes nothing
   the key was used before, and the caller replays.
2. **apply** each account's net change with a guarded ``UPDATE ... SET balance =
   balance + change WHERE ... (may_go_negative OR balance + change >= 0)``, accounts
   in sorted code order so concurrent posters cannot deadlock. A row the guard
   refuses is reported, not raised: the caller explains it.

Which statements do that is picked once per transaction, by :func:`write_path`:

- SQLite: a statement per row (postings by ``executemany``), one UPDATE per account.
- PostgreSQL, 2 to 8 postings (every claim): everything in one statement
  (:func:`_pg_fold_sql`): the journal row, postings and queue entry, the accounts
  locked in sorted code order and their guarded UPDATE, joined on the journal
  INSERT's ``RETURNING`` so that a replay changes nothing.
- PostgreSQL, more postings (a batch issuance, thousands of legs): the postings as
  arrays (``unnest``); the balance rows locked in sorted order by one ``SELECT ...
  ORDER BY code FOR UPDATE`` and changed by one guarded ``UPDATE ... FROM unnest``.

:func:`insert_accounts` opens new ledger accounts in one statement (PostgreSQL,
``unnest``) or one prepared statement per row (SQLite).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from voucherledger.core.rawsql import Raw


class JournalRow(NamedTuple):
    """A ``ledger_transactions`` row, bound (the parameters of every journal INSERT)."""

    id: str
    kind: str
    programme_id: str | None
    actor: str | None
    idempotency_key: str | None
    created_at: Any  # bound by rawsql.bind
    memo: str | None
    metadata: str  # canonical JSON text


class LegValues(Protocol):
    @property
    def account(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...


Net = Mapping[tuple[str, str], int]


@dataclass(frozen=True, slots=True)
class Applied:
    """The new balance of every account changed, and the first (account, currency),
    in sorted order, whose change the guard refused (None when all went through)."""

    balances: dict[str, int] = field(default_factory=dict)
    refused: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class WritePath:
    """One database's way of writing a transaction: ``insert`` returns False when the
    idempotency key was already used (nothing written); ``apply`` the balance changes.
    ``folded``, where a database has it, does both in one statement."""

    insert: Callable[[Raw, JournalRow, Sequence[LegValues]], bool]
    apply: Callable[[Raw, Net], Applied]
    folded: Callable[[Raw, JournalRow, Sequence[LegValues], Net], Applied | None] | None = None

    def write(
        self, db: Raw, row: JournalRow, legs: Sequence[LegValues], net: Net
    ) -> Applied | None:
        """Write the transaction and apply its changes; None when the idempotency key
        was already used (nothing written, nothing applied)."""
        if self.folded is not None:
            return self.folded(db, row, legs, net)
        return self.apply(db, net) if self.insert(db, row, legs) else None


# --- shared ------------------------------------------------------------------------

_UPDATE_BALANCE = (
    "UPDATE ledger_accounts SET balance = balance + ? "
    "WHERE code = ? AND currency = ? AND (may_go_negative OR balance + ? >= 0) "
    "RETURNING balance"
)
_QUEUE = "INSERT INTO ledger_seal_queue (transaction_id) VALUES (?)"


def _apply_per_account(db: Raw, net: Net) -> Applied:
    # Every (account, currency) is updated, even with a zero net change: the
    # UPDATE's ``currency = ?`` is what refuses a posting in another currency.
    balances: dict[str, int] = {}
    for account, currency in sorted(net):
        change = net[(account, currency)]
        updated = db.fetchone(_UPDATE_BALANCE, (change, account, currency, change))
        if updated is None:
            return Applied(balances, (account, currency))
        balances[account] = updated[0]
    return Applied(balances)


# --- SQLite ------------------------------------------------------------------------

_SQLITE_INSERT_TXN = (
    "INSERT INTO ledger_transactions "
    "(id, kind, programme_id, actor, idempotency_key, created_at, memo, metadata) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
_SQLITE_INSERT_POSTING = (
    "INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_ACCOUNT = (
    "INSERT INTO ledger_accounts (code, currency, may_go_negative, balance, created_at) "
    "VALUES (?, ?, ?, 0, ?)"
)


def _sqlite_insert(db: Raw, row: JournalRow, legs: Sequence[LegValues]) -> bool:
    if db.fetchone(_SQLITE_INSERT_TXN, row) is None:
        return False
    db.executemany(
        _SQLITE_INSERT_POSTING,
        [(row.id, leg.account, leg.amount, leg.currency, row.created_at) for leg in legs],
    )
    db.execute(_QUEUE, (row.id,))
    return True


# --- PostgreSQL, 2 to 8 postings: one statement ------------------------------------


def _pg_journal_ctes(n_legs: int) -> str:
    """``t``, ``p``, ``q``: the journal row (nothing on a replayed idempotency key), its
    postings and its seal-queue entry; the head of both one-statement forms below."""
    values = ", ".join(["(?, ?::bigint, ?)"] * n_legs)
    return (
        "WITH t AS (INSERT INTO ledger_transactions "  # noqa: S608 - placeholders only
        "(id, kind, programme_id, actor, idempotency_key, created_at, memo, metadata) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS JSON)) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at), "
        "p AS (INSERT INTO ledger_postings "
        "(transaction_id, account_code, amount, currency, created_at) "
        "SELECT t.id, v.account_code, v.amount, v.currency, t.created_at FROM t "
        f"CROSS JOIN (VALUES {values}) AS v(account_code, amount, currency)), "
        "q AS (INSERT INTO ledger_seal_queue (transaction_id) SELECT id FROM t)"
    )


def _pg_insert_sql(n_legs: int) -> str:
    return _pg_journal_ctes(n_legs) + " SELECT count(*) FROM t"  # noqa: S608 - placeholders only


_PG_INSERT_BY_LEGS = {n: _pg_insert_sql(n) for n in range(2, 9)}


def _pg_fold_sql(n_legs: int, n_accounts: int) -> str:
    """Insert and apply in one statement (a claim: BEGIN, this, COMMIT).

    ``l`` locks the accounts in code order (``FOR UPDATE``) and only once the journal
    row was written (``EXISTS (SELECT 1 FROM t)``: a replay locks and changes nothing);
    ``u`` changes only rows ``l`` has locked, so every row lock is taken in code order,
    whatever plan joins them, as the per-account UPDATEs take them. ``u``'s guard is the
    same as theirs, re-checked on the newest row version when a concurrent poster got
    there first (READ COMMITTED). A refused (account, currency) is simply missing from
    ``u``'s rows; the caller explains it and rolls back."""
    changes = ", ".join(["(?, ?, ?::bigint)"] * n_accounts)
    return (
        _pg_journal_ctes(n_legs) + ", "  # noqa: S608 - placeholders only
        f"n AS (SELECT * FROM (VALUES {changes}) AS n(code, currency, change)), "
        "l AS (SELECT a.code FROM ledger_accounts a WHERE a.code IN (SELECT code FROM n) "
        "AND EXISTS (SELECT 1 FROM t) ORDER BY a.code FOR UPDATE), "
        "u AS (UPDATE ledger_accounts a SET balance = a.balance + n.change FROM n "
        "WHERE a.code = n.code AND a.currency = n.currency "
        "AND a.code IN (SELECT code FROM l) "
        "AND (a.may_go_negative OR a.balance + n.change >= 0) "
        "RETURNING a.code, a.currency, a.balance) "
        "SELECT (SELECT count(*) FROM t), ARRAY(SELECT code FROM u), "
        "ARRAY(SELECT currency FROM u), ARRAY(SELECT balance FROM u)"
    )


_PG_FOLD: dict[tuple[int, int], str] = {}


def _pg_fold(db: Raw, row: JournalRow, legs: Sequence[LegValues], net: Net) -> Applied | None:
    keys = sorted(net)
    sql = _PG_FOLD.get((len(legs), len(keys)))
    if sql is None:
        sql = _PG_FOLD[(len(legs), len(keys))] = _pg_fold_sql(len(legs), len(keys))
    params: list[Any] = list(row)
    for leg in legs:
        params.extend((leg.account, leg.amount, leg.currency))
    for account, currency in keys:
        params.extend((account, currency, net[(account, currency)]))
    found = db.fetchone(sql, params)
    if found is None or found[0] != 1:
        return None
    done = dict(zip(zip(found[1], found[2], strict=True), found[3], strict=True))
    balances = {
        account: done[(account, currency)]
        for account, currency in keys
        if (account, currency) in done
    }
    refused = next((key for key in keys if key not in done), None)
    return Applied(balances, refused)


def _pg_insert_one_statement(db: Raw, row: JournalRow, legs: Sequence[LegValues]) -> bool:
    params: list[Any] = list(row)
    for leg in legs:
        params.extend((leg.account, leg.amount, leg.currency))
    counted = db.fetchone(_PG_INSERT_BY_LEGS[len(legs)], params)
    return counted is not None and counted[0] == 1


# --- PostgreSQL, more postings: arrays ---------------------------------------------

_PG_INSERT_TXN = (
    "INSERT INTO ledger_transactions "
    "(id, kind, programme_id, actor, idempotency_key, created_at, memo, metadata) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS JSON)) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
_PG_INSERT_POSTINGS = (
    "INSERT INTO ledger_postings (transaction_id, account_code, amount, currency, created_at) "
    "SELECT ?, u.account_code, u.amount, u.currency, ? "
    "FROM unnest(?::text[], ?::bigint[], ?::text[]) AS u(account_code, amount, currency)"
)
_PG_LOCK = "SELECT code FROM ledger_accounts WHERE code = ANY(?) ORDER BY code FOR UPDATE"
_PG_UPDATE_BALANCES = (
    "UPDATE ledger_accounts AS a SET balance = a.balance + u.change "
    "FROM unnest(?::text[], ?::text[], ?::bigint[]) AS u(code, currency, change) "
    "WHERE a.code = u.code AND a.currency = u.currency "
    "AND (a.may_go_negative OR a.balance + u.change >= 0) "
    "RETURNING a.code, u.currency, a.balance"
)
_PG_INSERT_ACCOUNTS = (
    "INSERT INTO ledger_accounts (code, currency, may_go_negative, balance, created_at) "
    "SELECT u.code, u.currency, u.may_go_negative, 0, ? "
    "FROM unnest(?::text[], ?::text[], ?::boolean[]) AS u(code, currency, may_go_negative)"
)


def _pg_insert_arrays(db: Raw, row: JournalRow, legs: Sequence[LegValues]) -> bool:
    if db.fetchone(_PG_INSERT_TXN, row) is None:
        return False
    db.execute(
        _PG_INSERT_POSTINGS,
        (
            row.id,
            row.created_at,
            [leg.account for leg in legs],
            [leg.amount for leg in legs],
            [leg.currency for leg in legs],
        ),
    )
    db.execute(_QUEUE, (row.id,))
    return True


def _pg_apply_arrays(db: Raw, net: Net) -> Applied:
    keys = sorted(net)
    db.fetchall(_PG_LOCK, (sorted({account for account, _ in keys}),))
    updated = db.fetchall(
        _PG_UPDATE_BALANCES,
        (
            [account for account, _ in keys],
            [currency for _, currency in keys],
            [net[key] for key in keys],
        ),
    )
    balances: dict[str, int] = {}
    done: set[tuple[str, str]] = set()
    for code, currency, balance in updated:
        done.add((code, currency))
        balances[code] = balance
    refused = next((key for key in keys if key not in done), None)
    return Applied(balances, refused)


# --- the choice ----------------------------------------------------------------------

_SQLITE = WritePath(_sqlite_insert, _apply_per_account)
_PG_ONE_STATEMENT = WritePath(_pg_insert_one_statement, _apply_per_account, _pg_fold)
_PG_ARRAYS = WritePath(_pg_insert_arrays, _pg_apply_arrays)


def write_path(dialect: str, n_legs: int) -> WritePath:
    """The statements that write a transaction of ``n_legs`` postings on ``dialect``
    (``create_db_engine`` admits only SQLite and PostgreSQL)."""
    if dialect == "sqlite":
        return _SQLITE
    return _PG_ONE_STATEMENT if n_legs in _PG_INSERT_BY_LEGS else _PG_ARRAYS


def insert_accounts(db: Raw, accounts: Sequence[tuple[str, str, bool]], created_at: Any) -> None:
    """New ``(code, currency, may_go_negative)`` accounts with a zero balance;
    ``created_at`` bound. A code already in use fails the primary key."""
    if db.dialect == "sqlite":
        db.executemany(
            _SQLITE_INSERT_ACCOUNT,
            [(code, currency, negative, created_at) for code, currency, negative in accounts],
        )
        return
    db.execute(
        _PG_INSERT_ACCOUNTS,
        (
            created_at,
            [account[0] for account in accounts],
            [account[1] for account in accounts],
            [account[2] for account in accounts],
        ),
    )
