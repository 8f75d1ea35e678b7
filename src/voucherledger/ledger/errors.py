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


class SigningKeyNotRecorded(LedgerError):
    """The process's signing key is not the chain's current key in the signing key
    history (guarantee 5): sealing with it would let a lost or swapped key sign the
    chain unseen. The operator restores the key or records the new one."""

    def __init__(self, signer_key: str, recorded_key: str | None, first_height: int) -> None:
        if recorded_key is None:
            where = (
                "the chain has blocks but no signing key history (run `voucherledger db upgrade`)"
            )
        else:
            where = f"the chain's current signing key is {recorded_key} (from block {first_height})"
        super().__init__(
            f"sealing refused: this process signs with key {signer_key}, but {where}. "
            "Restore that key (VOUCHERLEDGER_SIGNING_KEY or the key file), or record the new "
            "one with `voucherledger keys rotate-signing`."
        )
        self.signer_key = signer_key
        self.recorded_key = recorded_key


class KeyRotationRefused(LedgerError):
    """A rotation that would leave the signing key history unexplained or ambiguous:
    a previous key that is not the current one, a key brought back, no endorsement
    and no reason."""
