"""Refusals of the ledger. Each names the guarantee of ``docs/design.md`` it protects."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger refusal; the caller must roll its transaction back."""


class InvalidTransaction(LedgerError):
    """The postings are malformed: fewer than two, a zero or non-integer amount,
    a bad currency, or metadata that has no canonical form (guarantee 2 and 5)."""


class Unbalanced(InvalidTransaction):
    """Postings do not sum to zero in some currency (guarantee 2)."""


class UnknownAccount(LedgerError):
    """A posting names a ledger account that was never opened."""

    def __init__(self, account: str) -> None:
        super().__init__(f"ledger account {account!r} does not exist")
        self.account = account


class CurrencyMismatch(LedgerError):
    """A posting's currency is not the currency of its account."""

    def __init__(self, account: str, expected: str, got: str) -> None:
        super().__init__(f"ledger account {account!r} holds {expected}, not {got}")
        self.account = account


class InsufficientFunds(LedgerError):
    """An account that may not go negative would go below zero (guarantee 3)."""

    def __init__(self, account: str, balance: int, change: int) -> None:
        super().__init__(
            f"ledger account {account!r} has {balance}; a change of {change} would overdraw it"
        )
        self.account = account
        self.balance = balance
        self.change = change


class IdempotencyConflict(LedgerError):
    """The idempotency key was used before for a different transaction (guarantee 4)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was used for a different transaction")
        self.key = key
