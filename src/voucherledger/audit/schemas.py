"""Bodies of the ledger and audit endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from voucherledger.core.schemas import Schema


class PostingOut(Schema):
    account: str
    amount: int
    currency: str


class TransactionOut(Schema):
    id: str
    sequence: int | None
    kind: str
    programme_id: str | None
    actor: str | None
    created_at: datetime
    memo: str | None
    metadata: dict[str, Any]
    postings: list[PostingOut]


class TransactionList(Schema):
    data: list[TransactionOut]
    next_cursor: str | None


class BalanceOut(Schema):
    account: str
    currency: str
    balance: int
    as_of: datetime | None


class TrialBalanceLine(Schema):
    account: str
    currency: str
    balance: int


class TrialBalanceOut(Schema):
    programme_id: str | None
    as_of: datetime | None
    accounts: list[TrialBalanceLine]
    totals: dict[str, int]


class CheckpointOut(Schema):
    """The latest signed seal block: verify ``signature`` over the canonical bytes of
    ``{format, height, first_sequence, last_sequence, prev_hash, hash, sealed_at}``."""

    format: str
    height: int
    first_sequence: int
    last_sequence: int
    prev_hash: str
    hash: str
    sealed_at: datetime
    signature: str
    public_key: str
