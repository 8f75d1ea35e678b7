"""Bodies of the claim (redemption) endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StrictInt, StringConstraints, model_validator

from voucherledger.core.money import Amount
from voucherledger.core.pagination import Paginated
from voucherledger.core.schemas import (
    CREATED_BY,
    FreeText,
    InputSchema,
    Metadata,
    Schema,
    SingleLine,
)
from voucherledger.evidence.schemas import EvidenceFileRef
from voucherledger.redemptions.models import OutcomeKind, RedemptionStatus
from voucherledger.reference import ServiceCategory

Text = Annotated[
    str, FreeText, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)
]
ShortText = Annotated[
    str, FreeText, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)
]
Short = Annotated[
    str, SingleLine, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)
]


VoucherCode = Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=64)]
EvidenceId = Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=40)]


class Evidence(InputSchema):
    kind: Literal["invoice", "attendance", "certificate", "other"]
    reference: Short


class RedemptionCreate(InputSchema):
    voucher_code: VoucherCode
    amount: Amount
    service_category: ServiceCategory
    description: Text
    delivered_on: date | None = Field(
        default=None,
        description="When the service was delivered; not in the future, "
        "not before the voucher was issued. Defaults to today (UTC).",
    )
    evidence: Annotated[list[Evidence], Field(max_length=20)] = Field(default_factory=list)
    evidence_ids: Annotated[list[EvidenceId], Field(max_length=10)] = Field(
        default_factory=list,
        description="Evidence files (POST /v1/evidence) backing the claim: your own "
        "uploads, not used by another claim; at most 10, none twice.",
    )
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _evidence_once(self) -> RedemptionCreate:
        if len(set(self.evidence_ids)) != len(self.evidence_ids):
            raise ValueError("evidence_ids must not repeat")
        return self


class EvidenceOut(Schema):
    kind: str
    reference: str


class RedemptionOut(Schema):
    id: str
    voucher_id: str
    programme_id: str
    supplier_id: str
    group_id: str
    amount: int
    refunded_amount: int
    currency: str
    service_category: str
    description: str
    delivered_on: date | None
    evidence: list[EvidenceOut]
    evidence_files: list[EvidenceFileRef] = Field(
        description="The uploaded files backing the claim; their hashes are also in the "
        "metadata of the claim's journal transaction."
    )
    status: RedemptionStatus
    settled: bool
    created_at: datetime
    created_by: str | None = Field(description="Who made the claim. " + CREATED_BY)
    hold_expires_at: datetime | None
    decided_by: str | None = Field(
        description="Who captured or voided it (confirmed, rejected or cancelled it, or "
        "ran the sweep that released its timed-out hold); null while pending. " + CREATED_BY
    )
    metadata: dict[str, str] = Field(description="The metadata given when it was created.")


class RedemptionList(Schema, Paginated):
    data: list[RedemptionOut]
    next_cursor: str | None


class Reason(InputSchema):
    reason: ShortText


class RefundCreate(InputSchema):
    amount: Amount
    reason: ShortText


class FeedbackCreate(InputSchema):
    rating: Annotated[StrictInt, Field(ge=1, le=5)]
    outcome: Text
    outcome_kind: OutcomeKind


class FeedbackOut(Schema):
    redemption_id: str
    rating: int
    outcome: str
    outcome_kind: str
    created_at: datetime
    created_by: str | None = Field(description=CREATED_BY)


class VoucherValidate(InputSchema):
    voucher_code: VoucherCode


class VoucherValidation(Schema):
    """What a claim against the code could take now, before claiming."""

    voucher_id: str
    programme_id: str
    programme_name: str
    currency: str
    claimable_balance: int = Field(
        description="Spendable now, minor units: the balance less what pending claims hold."
    )
    categories: list[str] = Field(
        description="The voucher's categories that your active accreditation covers."
    )
    expires_at: datetime
