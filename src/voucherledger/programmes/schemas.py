"""Bodies of the programme endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, StringConstraints, model_validator

from voucherledger.core.money import Amount, Currency
from voucherledger.core.schemas import InputSchema, Schema, UTCDateTimeIn
from voucherledger.reference import CountryCode, GroupType, ServiceCategory

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
AccountId = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Categories = Annotated[list[ServiceCategory], Field(min_length=1, max_length=16)]


def _no_repeats(values: list[Any] | None, field: str) -> None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError(f"{field} must not repeat")


class ProgrammeRules(InputSchema):
    eligible_group_types: Annotated[list[GroupType], Field(min_length=1)] | None = None
    eligible_origin_countries: Annotated[list[CountryCode], Field(min_length=1)] | None = None
    max_voucher_amount: Amount | None = None
    max_total_per_group: Amount | None = None
    women_led_reserve_pct: Annotated[StrictInt, Field(ge=0, le=100)] = 0
    voucher_validity_days: Annotated[StrictInt, Field(ge=1, le=3650)] = 365
    requires_group_confirmation: StrictBool = True
    hold_days: Annotated[StrictInt, Field(ge=1, le=365)] = 14

    @model_validator(mode="after")
    def _check(self) -> ProgrammeRules:
        _no_repeats(self.eligible_group_types, "eligible_group_types")
        _no_repeats(self.eligible_origin_countries, "eligible_origin_countries")
        return self


class ProgrammeCreate(InputSchema):
    name: Name
    currency: Currency
    service_categories: Categories
    rules: ProgrammeRules = Field(default_factory=ProgrammeRules)
    manager_ids: Annotated[list[AccountId], Field(max_length=50)] = Field(default_factory=list)
    auditor_ids: Annotated[list[AccountId], Field(max_length=50)] = Field(default_factory=list)
    ends_at: UTCDateTimeIn | None = None

    @model_validator(mode="after")
    def _check(self) -> ProgrammeCreate:
        _no_repeats(self.service_categories, "service_categories")
        _no_repeats(self.manager_ids, "manager_ids")
        _no_repeats(self.auditor_ids, "auditor_ids")
        return self


class Balances(Schema):
    """Derived from the ledger. ``deposited`` always equals the sum of the other seven."""

    deposited: int
    unissued: int
    unissued_women_led_reserve: int
    outstanding: int
    held: int
    payable: int
    settled: int
    returned_to_funder: int


class RulesOut(Schema):
    eligible_group_types: list[str] | None
    eligible_origin_countries: list[str] | None
    max_voucher_amount: int | None
    max_total_per_group: int | None
    women_led_reserve_pct: int
    voucher_validity_days: int
    requires_group_confirmation: bool
    hold_days: int


class ProgrammeOut(Schema):
    id: str
    funder_id: str
    name: str
    currency: str
    service_categories: list[str]
    rules: RulesOut
    manager_ids: list[str]
    auditor_ids: list[str]
    ends_at: datetime | None
    status: str
    created_at: datetime
    closed_at: datetime | None
    balances: Balances


class DepositCreate(InputSchema):
    amount: Amount
    reference: Reference
    currency: Currency | None = Field(
        default=None, description="Optional; when given it must be the programme's currency."
    )


class DepositOut(Schema):
    transaction_id: str
    programme_id: str
    amount: int
    currency: str
    reference: str
    women_led_reserve_amount: int
    created_at: datetime


class AccreditationCreate(InputSchema):
    supplier_id: AccountId
    service_categories: Categories

    @model_validator(mode="after")
    def _check(self) -> AccreditationCreate:
        _no_repeats(self.service_categories, "service_categories")
        return self


class AccreditationOut(Schema):
    programme_id: str
    supplier_id: str
    service_categories: list[str]
    status: str
    created_at: datetime
    updated_at: datetime


class SupplierListing(Schema):
    supplier_id: str
    name: str
    service_categories: list[str]
    status: str
    claim_count: int
    feedback_count: int
    average_rating: float | None


class SweepOut(Schema):
    """What a sweep did: vouchers expired (and value returned), holds released."""

    expired_vouchers: int
    returned_amount: int
    released_holds: int
    released_amount: int
