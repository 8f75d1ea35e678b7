"""Bodies of the settlement endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from voucherledger.core.pagination import Paginated
from voucherledger.core.schemas import FreeText, InputSchema, Metadata, Schema, SingleLine

SettlementStatusFilter = Literal["proposed", "settled", "rejected"]


class SettlementCreate(InputSchema):
    supplier_id: Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=40)]
    payout_reference: Annotated[
        str, SingleLine, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)
    ]
    metadata: Metadata = Field(default_factory=dict)


class SettlementReject(InputSchema):
    reason: Annotated[
        str, FreeText, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)
    ]


class SettlementOut(Schema):
    """A payout to a supplier. Actor refs (``*_by``) are a member id, or an account
    key's id when a machine acted; null on settlements made before people existed."""

    id: str
    programme_id: str
    supplier_id: str
    amount: int = Field(description="Net of the claims covered, in minor units.")
    currency: str
    payout_reference: str
    payout_iban: str | None = Field(
        default=None,
        description="The supplier's payout IBAN when the settlement was proposed, which "
        "the payout goes to; null if it had none set, and for auditors.",
    )
    status: SettlementStatusFilter = Field(
        description="`proposed` (no money moved yet), `settled` (paid) or `rejected`."
    )
    redemption_ids: list[str] = Field(
        description="The claims covered; a rejected settlement still lists them."
    )
    transaction_id: str | None = Field(description="The `settle` transaction; null until settled.")
    proposed_by: str | None
    proposed_at: datetime
    approved_by: str | None = Field(
        description="Who approved the payout; with `single` approval, the proposer."
    )
    approved_at: datetime | None
    rejected_by: str | None
    rejected_at: datetime | None
    rejection_reason: str | None
    created_by: str | None = Field(description="The same as `proposed_by`.")
    created_at: datetime
    metadata: dict[str, str] = Field(description="The metadata given when it was created.")


class SettlementList(Schema, Paginated):
    data: list[SettlementOut]
    next_cursor: str | None
