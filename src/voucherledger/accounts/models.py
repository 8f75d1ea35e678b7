"""Parties and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.auth import MemberRole
from voucherledger.core.db import Base, UTCDateTime

ACCOUNT_KINDS = ("admin", "funder", "manager", "group", "supplier", "auditor")
MEMBER_ROLES = ("viewer", "operator", "approver", "owner")
MEMBER_STATUSES = ("invited", "active", "disabled")


AccountKind = Literal["admin", "funder", "manager", "group", "supplier", "auditor"]
MemberStatus = Literal["invited", "active", "disabled"]


class Account(Base):
    """A party. Its ``kind`` is the role of every API key it holds.

    Groups carry a profile (type, origin and residence country, women-led);
    suppliers carry the service categories they offer, a contact, and where they
    are paid (an IBAN, validated and stored compact and upper-case; a BIC; the
    account holder's name), which only the supplier, the admin and the funders and
    managers of programmes that accredit it see.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in ACCOUNT_KINDS) + ")", name="kind"
        ),
        CheckConstraint(
            "(kind = 'group') = (group_type IS NOT NULL AND origin_country IS NOT NULL "
            "AND residence_country IS NOT NULL AND women_led IS NOT NULL)",
            name="group_profile",
        ),
        CheckConstraint(
            "(kind = 'supplier') = (service_categories IS NOT NULL)", name="supplier_profile"
        ),
        Index("ix_accounts_kind_id", "kind", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[AccountKind] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    # The integrator's own keys and values (issue 13: up to 20 keys, values up to
    # 500 characters); never read by the service. "metadata" is taken by SQLAlchemy.
    meta: Mapped[dict[str, str]] = mapped_column(
        "metadata", JSON, default=dict, server_default=text("'{}'")
    )
    country: Mapped[str | None] = mapped_column(String(2))
    group_type: Mapped[str | None] = mapped_column(String(40))
    origin_country: Mapped[str | None] = mapped_column(String(2))
    residence_country: Mapped[str | None] = mapped_column(String(2))
    women_led: Mapped[bool | None] = mapped_column(Boolean)
    service_categories: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set by an owner: every member must confirm a TOTP second factor; until then a
    # member's session may only set one up (people/totp.py).
    require_totp: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Who did it (here and in every ``*_by`` column): a member id, an account key id,
    # "system" for the service's own work (the CLI, background jobs), or None for a
    # row written before migration 0009.
    created_by: Mapped[str | None] = mapped_column(String(40))
    # A supplier's contact and payout details (null for every other kind, and until
    # set): PATCH /v1/accounts/{id}/supplier-profile.
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    payout_iban: Mapped[str | None] = mapped_column(String(34))
    payout_bic: Mapped[str | None] = mapped_column(String(11))
    payout_account_holder: Mapped[str | None] = mapped_column(String(200))
    # When and by whom a payout field last changed (a member id or an account key id).
    payout_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payout_updated_by: Mapped[str | None] = mapped_column(String(40))


class ApiKey(Base):
    """An API key. Only the SHA-256 of its secret is stored; the secret is shown once.

    A key is ``vl_{id}_{secret}``: the id finds the row by primary key, the secret
    (256 random bits) is compared with the stored hash in constant time.
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # A member's personal key acts as that person, with that person's role;
    # without a member it is the account's key (a machine).
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(40))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(40))


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Member(Base):
    """A person in one account, with a role inside it.

    ``email_key`` is the address folded to lower case: unique per account, so two
    invitations cannot differ only in case. The password is an Argon2id hash; the
    invitation token and the TOTP secret are set while they are in use.
    """

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint(_in("role", MEMBER_ROLES), name="role"),
        CheckConstraint(_in("status", MEMBER_STATUSES), name="status"),
        CheckConstraint("status = 'invited' OR password_hash IS NOT NULL", name="password_set"),
        UniqueConstraint("account_id", "email_key", name="uq_members_account_id_email_key"),
        Index("ix_members_account_id_id", "account_id", "id"),
        Index("ix_members_email_key", "email_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[MemberRole] = mapped_column(String(16))
    status: Mapped[MemberStatus] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The RFC 6238 time step of the last code accepted: a code of that step or an
    # earlier one is refused, so a code seen once cannot be replayed.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Who invited this person: a member id or an account key id.
    created_by: Mapped[str | None] = mapped_column(String(40))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
