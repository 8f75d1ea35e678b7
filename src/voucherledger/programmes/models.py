"""Programmes, their parties and their accredited suppliers.

Money is not stored here: a programme's budget lives in its ledger accounts
(``programme:{id}:unissued`` and ``programme:{id}:women_led_reserve``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime

ProgrammeStatus = Literal["open", "closed"]
AccreditationStatus = Literal["active", "suspended"]
PartyRole = Literal["manager", "auditor"]


class Programme(Base):
    __tablename__ = "programmes"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        Index("ix_programmes_funder_id_id", "funder_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    funder_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    # The integrator's own keys and values (issue 13: up to 20 keys, values up to
    # 500 characters); never read by the service. "metadata" is taken by SQLAlchemy.
    meta: Mapped[dict[str, str]] = mapped_column(
        "metadata", JSON, default=dict, server_default=text("'{}'")
    )
    currency: Mapped[str] = mapped_column(String(3))
    service_categories: Mapped[list[str]] = mapped_column(JSON)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[ProgrammeStatus] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Who created and who closed it: a member id, an account key id, or None for a
    # row written before migration 0009. The parties named at creation have no
    # column of their own: the programme's creator named them.
    created_by: Mapped[str | None] = mapped_column(String(40))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(40))


class ProgrammeParty(Base):
    """A manager or auditor granted access to a programme by its funder."""

    __tablename__ = "programme_parties"
    __table_args__ = (
        CheckConstraint("role IN ('manager', 'auditor')", name="role"),
        Index("ix_programme_parties_account_id", "account_id", "programme_id"),
    )

    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    role: Mapped[PartyRole] = mapped_column(String(10))


class Accreditation(Base):
    """A supplier accredited for some of a programme's categories; suspension stops claims."""

    __tablename__ = "accreditations"
    __table_args__ = (CheckConstraint("status IN ('active', 'suspended')", name="status"),)

    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"), primary_key=True)
    supplier_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    service_categories: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[AccreditationStatus] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Who accredited it first, and who last changed it (re-accredited or suspended).
    created_by: Mapped[str | None] = mapped_column(String(40))
    updated_by: Mapped[str | None] = mapped_column(String(40))
