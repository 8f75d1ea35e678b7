"""Bodies of the ledger and audit endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, PrivateAttr, computed_field

from voucherledger.core.pagination import Paginated
from voucherledger.core.schemas import CREATED_BY, Schema


class PostingOut(Schema):
    account: str
    amount: int
    currency: str


class TransactionOut(Schema):
    id: str
    sequence: int | None
    kind: str
    programme_id: str | None
    actor: str | None = Field(description="The account (party) the transaction is for.")
    created_by: str | None = Field(
        description="`metadata.created_by`: who did it, inside the account. " + CREATED_BY
    )
    created_at: datetime
    memo: str | None
    metadata: dict[str, Any]
    postings: list[PostingOut]


class TransactionList(Schema, Paginated):
    data: list[TransactionOut]
    next_cursor: str | None
    next_after_sequence: int | None = Field(
        default=None,
        description="With `after_sequence`: where to resume, the last sequence of this "
        "page (the `after_sequence` given when the page is empty); null without it.",
    )
    _more_by_sequence: bool = PrivateAttr(default=False)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_more(self) -> bool:
        """True when a next page exists: by cursor, or (``after_sequence``) when more
        sealed transactions follow this page."""
        return self.next_cursor is not None or self._more_by_sequence

    def followed(self, more: bool) -> TransactionList:
        """This page, saying whether more sealed transactions follow it."""
        self._more_by_sequence = more
        return self


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
