"""The append-only double-entry ledger. No HTTP here; see ``docs/design.md``.

Model: a ledger account has a code, a currency and whether it may go negative
(only external sources may). A journal transaction is two or more postings
``{account, amount, currency}``, signed integers in minor units, summing to zero
per currency. An account's balance is the sum of its postings.

Invariants, each enforced by the database as well as by this code:
1. append-only — triggers refuse UPDATE/DELETE of transactions, postings, seals;
2. balanced — checked here, and by a deferred constraint trigger on PostgreSQL;
3. no overdraft — guarded balance updates, locked in sorted order, and a CHECK;
4. idempotent — a unique idempotency key; a retry returns the original;
5. tamper-evident — a signed hash chain built by the sealer;
6. point in time — balances as of any instant from the postings.

Write only through :func:`post`.
"""

from voucherledger.ledger.errors import (
    CurrencyMismatch,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidTransaction,
    LedgerError,
    Unbalanced,
    UnknownAccount,
)
from voucherledger.ledger.service import (
    SYSTEM,
    AccountBalance,
    Leg,
    Posted,
    TrialBalance,
    balance,
    balance_as_of,
    balances,
    key_used,
    open_account,
    open_accounts,
    post,
    trial_balance,
)

__all__ = [
    "SYSTEM",
    "AccountBalance",
    "CurrencyMismatch",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidTransaction",
    "LedgerError",
    "Leg",
    "Posted",
    "TrialBalance",
    "Unbalanced",
    "UnknownAccount",
    "balance",
    "balance_as_of",
    "balances",
    "key_used",
    "open_account",
    "open_accounts",
    "post",
    "trial_balance",
]
