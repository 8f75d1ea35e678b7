"""The ledger's tables. Only :mod:`voucherledger.ledger.service` and the sealer write them.

Signs: a posting's ``amount`` is signed from the side of its account — positive
adds to the account's balance, negative takes from it. An account's ``balance``
is the sum of its postings' amounts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

# What a journal transaction records; the CHECK on ledger_transactions.kind lists them.
TransactionKind = Literal[
    "deposit",  # external money into a programme's budget
    "issue",  # budget into a voucher
    "hold",  # voucher value held by a pending claim
    "capture",  # a claim becomes the supplier's payable
    "void",  # a held claim released back to the voucher
    "refund",  # captured, unsettled value back to the voucher
    "revoke",  # a revoked voucher's remaining value back to the budget
    "expire",  # an expired voucher's remaining value back to the budget
    "settle",  # a supplier's payable paid out
    "close",  # a closed programme's unissued budget back to the funder
    "transfer",  # a plain movement between accounts (tests, corrections)
]
TRANSACTION_KINDS: tuple[TransactionKind, ...] = get_args(TransactionKind)


class LedgerAccount(Base):
    """A ledger account and its current balance, kept in step with its postings.

    The balance row is what makes current balances O(1) and overdrafts
    impossible: the CHECK refuses a negative balance unless the account is an
    external source (``may_go_negative``).
    """

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("may_go_negative OR balance >= 0", name="no_overdraft"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
    )

    code: Mapped[str] = mapped_column(String(200), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    may_go_negative: Mapped[bool] = mapped_column(Boolean)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JournalTransaction(Base):
    """One business operation: two or more postings that sum to zero per currency.

    Append-only: triggers refuse UPDATE and DELETE.
    """

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in TRANSACTION_KINDS) + ")", name="kind"
        ),
        Index("ix_ledger_transactions_programme_created", "programme_id", "created_at"),
        Index("ix_ledger_transactions_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[TransactionKind] = mapped_column(String(16))
    programme_id: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(600), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    memo: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)


class Posting(Base):
    """One leg of a transaction. Append-only."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="nonzero"),
        Index("ix_ledger_postings_account_created", "account_code", "created_at"),
        Index("ix_ledger_postings_transaction_id_id", "transaction_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"))
    # Checked at COMMIT, so that a posting to an unknown account reaches the balance
    # update, which names the account (UnknownAccount), instead of failing the INSERT.
    account_code: Mapped[str] = mapped_column(
        ForeignKey("ledger_accounts.code", deferrable=True, initially="DEFERRED")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Copy of the transaction's created_at, so point-in-time balances are one index range.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SealQueue(Base):
    """Transactions written but not yet sealed. Writers insert; only the sealer deletes.

    The queue lets the sealer find unsealed work without writers ever touching
    the chain head, and without missing a transaction that commits late.
    """

    __tablename__ = "ledger_seal_queue"

    transaction_id: Mapped[str] = mapped_column(
        ForeignKey("ledger_transactions.id"), primary_key=True
    )


class Seal(Base):
    """A transaction's place in the hash chain. Append-only.

    ``hash = SHA-256(previous hash || canonical bytes of the transaction)``, see
    ``docs/ledger-format.md``.
    """

    __tablename__ = "ledger_seals"

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"), unique=True)
    hash: Mapped[str] = mapped_column(String(64))
    block_height: Mapped[int] = mapped_column(BigInteger, index=True)


class SealBlock(Base):
    """A batch of seals, signed with Ed25519. Append-only."""

    __tablename__ = "ledger_seal_blocks"

    height: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_sequence: Mapped[int] = mapped_column(BigInteger)
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    signature: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[str] = mapped_column(String(64))


class SigningKey(Base):
    """A public key that signs seal blocks, from block ``first_height`` until the next
    key's ``first_height``. Append-only: the history an auditor checks blocks against.

    The first key is recorded by the first seal of an empty chain. Each later key is
    recorded by a rotation (``voucherledger keys rotate-signing``): ``endorsement`` is
    the previous key's signature over the new key (see ``docs/ledger-format.md``), or,
    when the previous key was lost, ``unendorsed_reason`` says why there is none.
    """

    __tablename__ = "ledger_signing_keys"
    __table_args__ = (
        CheckConstraint("first_height >= 1", name="first_height_positive"),
        CheckConstraint(
            "position = 1 OR endorsement IS NOT NULL OR unendorsed_reason IS NOT NULL",
            name="endorsed_or_explained",
        ),
    )

    # 1, 2, 3, ...: the order of the history (two keys may share a first_height when
    # one was replaced before it signed anything).
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Not unique: a chain sealed before the history existed may have gone back to a
    # key (nodes with their own development keys); migration 0005 records each run.
    # A rotation never brings a key back (ledger/keys.py).
    public_key: Mapped[str] = mapped_column(String(64), index=True)
    first_height: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    endorsement: Mapped[str | None] = mapped_column(String(128))
    unendorsed_reason: Mapped[str | None] = mapped_column(Text)
