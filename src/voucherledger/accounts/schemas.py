"""Bodies of the account and key endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StringConstraints, model_validator
from schwifty import BIC, IBAN

from voucherledger.accounts.models import AccountKind
from voucherledger.core.schemas import (
    CREATED_BY,
    Email,
    InputSchema,
    Metadata,
    Schema,
    SingleLine,
)
from voucherledger.reference import CountryCode, GroupType, ServiceCategory

Name = Annotated[
    str, SingleLine, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)
]


class GroupProfile(InputSchema):
    group_type: GroupType
    origin_country: CountryCode
    residence_country: CountryCode
    women_led: StrictBool


class SupplierProfile(InputSchema):
    service_categories: Annotated[list[ServiceCategory], Field(min_length=1, max_length=16)]

    @model_validator(mode="after")
    def _unique(self) -> SupplierProfile:
        if len(set(self.service_categories)) != len(self.service_categories):
            raise ValueError("service_categories must not repeat")
        return self


class AccountCreate(InputSchema):
    kind: AccountKind
    name: Name
    country: CountryCode | None = None
    group: GroupProfile | None = None
    supplier: SupplierProfile | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _profile_matches_kind(self) -> AccountCreate:
        if (self.kind == "group") != (self.group is not None):
            raise ValueError("a group profile is required for kind 'group' and only for it")
        if (self.kind == "supplier") != (self.supplier is not None):
            raise ValueError("a supplier profile is required for kind 'supplier' and only for it")
        return self


class GroupProfileOut(Schema):
    group_type: str
    origin_country: str
    residence_country: str
    women_led: bool


def _iban(value: str) -> str:
    """Normalised (compact, upper case); country, length and checksum checked."""
    try:
        return IBAN(value).compact
    except ValueError as exc:  # schwifty's errors are ValueErrors
        raise ValueError(f"not a valid IBAN: {exc}") from None


def _bic(value: str) -> str:
    try:
        return BIC(value).compact
    except ValueError as exc:
        raise ValueError(f"not a valid BIC: {exc}") from None


Iban = Annotated[
    str,
    SingleLine,
    StringConstraints(min_length=5, max_length=50, strip_whitespace=True),
    AfterValidator(_iban),
]
Bic = Annotated[
    str,
    SingleLine,
    StringConstraints(min_length=8, max_length=11, strip_whitespace=True),
    AfterValidator(_bic),
]
# Digits, spaces and + - ( ) . / only, as people write numbers.
Phone = Annotated[
    str,
    SingleLine,
    StringConstraints(
        min_length=3, max_length=40, strip_whitespace=True, pattern=r"^\+?[0-9 ().\-/]+$"
    ),
]

PAYOUT_FIELDS = ("payout_iban", "payout_bic", "payout_account_holder")


class SupplierProfileUpdate(InputSchema):
    """Only the fields sent change; ``null`` clears one."""

    contact_email: Email | None = None
    contact_phone: Phone | None = None
    payout_iban: Iban | None = Field(
        default=None, description="Spaces allowed; stored compact and upper case."
    )
    payout_bic: Bic | None = None
    payout_account_holder: Name | None = None


class SupplierProfileOut(Schema):
    service_categories: list[str]
    contact_email: str | None = None
    contact_phone: str | None = None
    payout_iban: str | None = Field(
        default=None,
        description="Shown to the supplier, the admin, and the funders and managers of "
        "programmes that accredit it; null for everyone else (and until set).",
    )
    payout_bic: str | None = Field(default=None, description="Shown as payout_iban is.")
    payout_account_holder: str | None = Field(default=None, description="Shown as payout_iban is.")
    payout_updated_at: datetime | None = Field(
        default=None, description="When a payout field last changed; shown as payout_iban is."
    )
    payout_updated_by: str | None = Field(
        default=None, description="Who changed it; shown as payout_iban is. " + CREATED_BY
    )


class AccountOut(Schema):
    id: str
    kind: str
    name: str
    country: str | None
    group: GroupProfileOut | None
    supplier: SupplierProfileOut | None
    created_at: datetime
    require_totp: bool = Field(
        default=False, description="Every member must confirm a TOTP second factor."
    )
    created_by: str | None = Field(description=CREATED_BY)
    metadata: dict[str, str] = Field(description="The metadata given when it was created.")


class KeyCreated(Schema):
    id: str
    account_id: str
    key: str | None = Field(
        description="The API key. Shown only in this response, store it now; null when the "
        "response is an idempotent replay."
    )
    created_at: datetime
    created_by: str | None = Field(description=CREATED_BY)


class KeyOut(Schema):
    """A key as listed: who it acts as and whether it still works, never its secret."""

    id: str
    account_id: str
    member_id: str | None = Field(
        description="The member a personal key acts as; null for the account's own key."
    )
    created_at: datetime
    created_by: str | None = Field(description=CREATED_BY)
    revoked_at: datetime | None = Field(description="When it stopped working; null if it works.")
    revoked_by: str | None = Field(description="Who revoked it (a member id or a key id).")


class GroupProfileUpdate(InputSchema):
    """A group's profile fields to correct; only those sent change."""

    group_type: GroupType | None = None
    origin_country: CountryCode | None = None
    residence_country: CountryCode | None = None
    women_led: StrictBool | None = None


class AccountUpdate(InputSchema):
    """A correction of an account's description (never its kind): only the fields
    sent change. ``country`` null clears it; ``metadata`` replaces the whole dict;
    ``group`` is for a group account only, and its fields may not be null."""

    name: Name | None = None
    country: CountryCode | None = None
    group: GroupProfileUpdate | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> AccountUpdate:
        nullable = {"country"}
        for field in sorted(self.model_fields_set - nullable):
            if getattr(self, field) is None:
                raise ValueError(f"{field} may not be null")
        if self.group is not None:
            for field in sorted(self.group.model_fields_set):
                if getattr(self.group, field) is None:
                    raise ValueError(f"group.{field} may not be null")
        return self
