"""Bodies of the programme endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, StringConstraints, model_validator

from voucherledger.core.money import Amount, Currency
from voucherledger.core.schemas import (
    CREATED_BY,
    InputSchema,
    Metadata,
    Schema,
    SingleLine,
    UTCDateTimeIn,
)
from voucherledger.reference import CountryCode, GroupType, ServiceCategory

Name = Annotated[
    str, SingleLine, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)
]
Reference = Annotated[
    str, SingleLine, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)
]
AccountId = Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=40)]
SettlementApproval = Literal["single", "two_person"]
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
    settlement_approval: SettlementApproval = Field(
        default="single",
        description="`single`: a settlement is paid when the funder creates it. "
        "`two_person`: it is proposed, and paid when a second person of the funder (an "
        "approver or owner, not the proposer) approves it.",
    )

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
    metadata: Metadata = Field(default_factory=dict)

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
    # Programmes created before the rule existed settle at once.
    settlement_approval: SettlementApproval = "single"


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
    created_by: str | None = Field(description=CREATED_BY)
    closed_at: datetime | None
    closed_by: str | None = Field(description="Who closed it. " + CREATED_BY)
    balances: Balances
    metadata: dict[str, str] = Field(description="The metadata given when it was created.")


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
    created_by: str = Field(description=CREATED_BY)


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
    created_by: str | None = Field(description="Who first accredited it. " + CREATED_BY)
    updated_at: datetime
    updated_by: str | None = Field(
        description="Who last changed it (accredited it again or suspended it). " + CREATED_BY
    )


class SupplierListing(Schema):
    supplier_id: str
    name: str
    service_categories: list[str]
    status: str
    claim_count: int
    feedback_count: int
    average_rating: float | None


# --- the programme report ---------------------------------------------------------

ReportDimension = Literal[
    "total", "women_led", "group_type", "origin_country", "service_category", "supplier"
]
ReportFormat = Literal["json", "csv"]


class ReportLine(Schema):
    """The figures of one slice of a programme, in minor units of its currency.

    Issuance (``vouchers_issued``, ``amount_issued``), ``returned`` and
    ``redemption_rate`` belong to a voucher's group, so they are given on the
    ``total``, ``women_led``, ``group_type`` and ``origin_country`` lines and are null
    on ``service_category`` and ``supplier`` lines: a voucher may be spent on any of
    its categories, with any supplier, so its face value is not split between them.
    Claims count under the category claimed and the supplier claiming.
    """

    dimension: ReportDimension
    key: str = Field(
        description="The slice: `all` (total), `women_led` or `other`, a group type, an "
        "origin country, a service category, or a supplier id."
    )
    label: str | None = Field(description="The supplier's name on supplier lines; else null.")
    vouchers_issued: int | None = Field(description="Vouchers issued (any status now).")
    amount_issued: int | None = Field(description="Their face value.")
    claims: int = Field(description="Claims not voided (pending or captured).")
    claimed: int = Field(description="Amount of the claims not voided.")
    captured: int = Field(description="Amount of captured claims, net of refunds.")
    settled: int = Field(description="Net amount of captured claims paid by a settlement.")
    returned: int | None = Field(
        description="Value that went back from the vouchers to the programme's budget (or "
        "its funder, once closed): at revocation and expiry, and from holds released or "
        "claims refunded after the voucher ended. Read from the journal."
    )
    redemption_rate: str | None = Field(
        description="captured / amount_issued as a decimal with 4 places (half up); null "
        "when nothing was issued.",
        examples=["0.4125"],
    )
    feedback_count: int = Field(description="Feedback given on the line's claims.")
    average_rating: str | None = Field(
        description="Mean rating (1-5) with 2 places (half up); null without feedback.",
        examples=["4.50"],
    )
    outcomes_product: int = Field(description="Feedback reporting a product outcome.")
    outcomes_process: int = Field(description="Feedback reporting a process outcome.")


class ReportBreakdowns(Schema):
    """Each dimension's lines, sorted by key; every line's figures sum to the total's
    (``women_led`` always has both lines, ``service_category`` every category of the
    programme, ``supplier`` every accredited supplier)."""

    women_led: list[ReportLine]
    group_type: list[ReportLine]
    origin_country: list[ReportLine]
    service_category: list[ReportLine]
    supplier: list[ReportLine]


class WomenLedShare(Schema):
    """Issuance to women-led groups, next to the share the programme ring-fences."""

    amount_issued: int = Field(description="Face value of vouchers issued to women-led groups.")
    share_of_issuance: str | None = Field(
        description="amount_issued / the programme's total amount issued, 4 places (half "
        "up); null when nothing was issued.",
        examples=["0.3500"],
    )
    reserve_pct: int = Field(description="The programme's `women_led_reserve_pct` rule.")
    issued_from_reserve: int = Field(
        description="Of amount_issued, how much was drawn from the women-led reserve."
    )
    reserve_balance: int = Field(description="What the women-led reserve holds now (ledger).")


class ProgrammeReport(Schema):
    programme_id: str
    name: str
    currency: str
    status: str
    generated_at: datetime
    totals: ReportLine
    women_led: WomenLedShare
    breakdowns: ReportBreakdowns


class ProgrammeUpdate(InputSchema):
    """A correction: only the fields sent change. ``manager_ids`` / ``auditor_ids``
    replace that list of parties; ``metadata`` replaces the whole dict. None may be
    null."""

    name: Name | None = None
    manager_ids: Annotated[list[AccountId], Field(max_length=50)] | None = None
    auditor_ids: Annotated[list[AccountId], Field(max_length=50)] | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _check(self) -> ProgrammeUpdate:
        for field in sorted(self.model_fields_set):
            if getattr(self, field) is None:
                raise ValueError(f"{field} may not be null")
        _no_repeats(self.manager_ids or [], "manager_ids")
        _no_repeats(self.auditor_ids or [], "auditor_ids")
        return self
