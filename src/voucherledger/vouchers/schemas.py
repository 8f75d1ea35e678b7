"""Bodies of the voucher endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from voucherledger.core.money import Amount
from voucherledger.core.pagination import Paginated
from voucherledger.core.schemas import (
    CREATED_BY,
    FreeText,
    InputSchema,
    Metadata,
    Schema,
    SingleLine,
    UTCDateTimeIn,
)
from voucherledger.reference import ServiceCategory
from voucherledger.vouchers.models import VoucherStatus

MAX_BATCH = 10_000


class VoucherCreate(InputSchema):
    group_id: Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=40)]
    amount: Amount
    service_categories: (
        Annotated[list[ServiceCategory], Field(min_length=1, max_length=16)] | None
    ) = None
    expires_at: UTCDateTimeIn | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> VoucherCreate:
        cats = self.service_categories
        if cats is not None and len(set(cats)) != len(cats):
            raise ValueError("service_categories must not repeat")
        return self


class VoucherBatch(InputSchema):
    vouchers: Annotated[list[VoucherCreate], Field(min_length=1, max_length=MAX_BATCH)]


class VoucherOut(Schema):
    id: str
    code: str | None = Field(description="Shown to the funder, its managers and the owning group.")
    programme_id: str
    group_id: str
    currency: str
    amount: int = Field(description="Face value in minor units.")
    balance: int = Field(description="Spendable now, minor units.")
    held: int = Field(description="Held by pending claims, minor units.")
    service_categories: list[str]
    status: VoucherStatus
    expires_at: datetime
    created_at: datetime
    created_by: str | None = Field(description="Who issued it. " + CREATED_BY)
    revoked_by: str | None = Field(description="Who revoked it, if revoked. " + CREATED_BY)
    metadata: dict[str, str] = Field(description="The metadata given when it was created.")


class VoucherList(Schema, Paginated):
    data: list[VoucherOut]
    next_cursor: str | None


class BatchOut(Schema):
    data: list[VoucherOut]


class BatchCheckError(Schema):
    index: int = Field(description="The item's position in ``vouchers``, from 0.")
    code: str = Field(description="The error code issuing would refuse the item with.")
    detail: str


class BatchCheck(Schema):
    """What ``POST .../vouchers/batch`` would answer to the same body, nothing written."""

    valid: bool = Field(description="True when the batch would be issued as it is now.")
    count: int = Field(description="Items in the batch.")
    total_amount: int = Field(description="Sum of the items' amounts, minor units.")
    errors: list[BatchCheckError] = Field(
        description="Every item the batch would refuse, as ``{index, code, detail}``."
    )


class RevokeBody(InputSchema):
    reason: Annotated[
        str, FreeText, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)
    ]


class StatementLine(Schema):
    """One journal transaction that moved the voucher's value."""

    transaction_id: str
    kind: str = Field(
        description="The journal transaction's kind: issue, hold, capture, void, refund, "
        "revoke, expire, ..."
    )
    occurred_at: datetime = Field(description="The transaction's time.")
    amount: int = Field(
        description="Change of the voucher's spendable balance, minor units (negative when "
        "spent, held or returned to the budget)."
    )
    held_delta: int | None = Field(
        description="Change of what pending claims hold on the voucher; null when the "
        "transaction did not touch it."
    )
    balance_after: int = Field(description="The spendable balance after this transaction.")
    redemption_id: str | None = Field(description="The claim it belongs to, if any.")
    description: str


class VoucherStatement(Schema, Paginated):
    voucher_id: str
    currency: str
    data: list[StatementLine] = Field(description="Oldest first.")
    next_cursor: str | None


class VoucherUpdate(InputSchema):
    """A correction: only the fields sent change; neither may be null."""

    expires_at: UTCDateTimeIn | None = Field(
        default=None,
        description="Later than the current expiry and not after the programme's ends_at.",
    )
    metadata: Metadata | None = Field(default=None, description="Replaces the whole dict.")

    @model_validator(mode="after")
    def _no_nulls(self) -> VoucherUpdate:
        for field in sorted(self.model_fields_set):
            if getattr(self, field) is None:
                raise ValueError(f"{field} may not be null")
        return self
