"""Bodies of the settlement endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import StringConstraints

from voucherledger.core.schemas import InputSchema, Schema, SingleLine


class SettlementCreate(InputSchema):
    supplier_id: Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=40)]
    payout_reference: Annotated[
        str, SingleLine, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)
    ]


class SettlementOut(Schema):
    id: str
    programme_id: str
    supplier_id: str
    amount: int
    currency: str
    payout_reference: str
    redemption_ids: list[str]
    transaction_id: str
    created_at: datetime


class SettlementList(Schema):
    data: list[SettlementOut]
    next_cursor: str | None
