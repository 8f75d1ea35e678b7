"""Parties and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime

ACCOUNT_KINDS = ("admin", "funder", "manager", "group", "supplier", "auditor")


AccountKind = Literal["admin", "funder", "manager", "group", "supplier", "auditor"]


class Account(Base):
    """A party. Its ``kind`` is the role of every API key it holds.

    Groups carry a profile (type, origin and residence country, women-led);
    suppliers carry the service categories they offer.
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
    country: Mapped[str | None] = mapped_column(String(2))
    group_type: Mapped[str | None] = mapped_column(String(40))
    origin_country: Mapped[str | None] = mapped_column(String(2))
    residence_country: Mapped[str | None] = mapped_column(String(2))
    women_led: Mapped[bool | None] = mapped_column(Boolean)
    service_categories: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """An API key. Only the SHA-256 of its secret is stored; the secret is shown once.

    A key is ``vl_{id}_{secret}``: the id finds the row by primary key, the secret
    (256 random bits) is compared with the stored hash in constant time.
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
