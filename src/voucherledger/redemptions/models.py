"""Claims (redemptions) and the groups' feedback on them.

Value never lives here: a pending claim's amount is in ``voucher:{id}:held``,
a captured one's in ``supplier:{id}:payable:{programme}``. This row records
what the ledger does not: who claimed what, for which service, on what
evidence, and where the claim is in its life (pending -> captured | voided).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime

REDEMPTION_STATUSES = ("pending", "captured", "voided")


# pending: value held until the group confirms; captured: the supplier's payable;
# voided: released (rejected, cancelled or timed out). A refund keeps it captured.
RedemptionStatus = Literal["pending", "captured", "voided"]
OutcomeKind = Literal["product", "process"]


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in REDEMPTION_STATUSES) + ")",
            name="status",
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refunded"),
        Index("ix_redemptions_voucher_id", "voucher_id"),
        Index("ix_redemptions_programme_id_id", "programme_id", "id"),
        Index("ix_redemptions_supplier_settle", "supplier_id", "programme_id", "status"),
        Index("ix_redemptions_status_hold_expires_at", "status", "hold_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    voucher_id: Mapped[str] = mapped_column(ForeignKey("vouchers.id"))
    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"))
    supplier_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    group_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    # Minor units claimed, and how much of it was refunded to the voucher since.
    amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    service_category: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text)
    delivered_on: Mapped[date | None] = mapped_column(Date)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The integrator's own keys and values (issue 13: up to 20 keys, values up to
    # 500 characters); never read by the service. "metadata" is taken by SQLAlchemy.
    meta: Mapped[dict[str, str]] = mapped_column(
        "metadata", JSON, default=dict, server_default=text("'{}'")
    )
    status: Mapped[RedemptionStatus] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    void_reason: Mapped[str | None] = mapped_column(Text)
    settlement_id: Mapped[str | None] = mapped_column(ForeignKey("settlements.id"), index=True)
    # Who claimed it, and who decided it (``decided_at``: captured or voided): a member
    # id, an account key id, "system" (the background sweep releasing a timed-out
    # hold), or None for a row
    # written before migration 0009. Each refund's journal transaction says who.
    created_by: Mapped[str | None] = mapped_column(String(40))
    decided_by: Mapped[str | None] = mapped_column(String(40))


class Feedback(Base):
    """The owning group's rating of a captured claim; one per claim."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint("outcome_kind IN ('product', 'process')", name="outcome_kind"),
    )

    redemption_id: Mapped[str] = mapped_column(ForeignKey("redemptions.id"), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    rating: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(Text)
    outcome_kind: Mapped[OutcomeKind] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(40))


class CodeFailure(Base):
    """One failed voucher-code look-up by a supplier (mistyped, unknown, or a voucher
    it has nothing to do with). The limiter counts these rows in a sliding window, so
    every process and node sees the same count; a restart keeps it. Rows older than
    the window are purged by the background housekeeping."""

    __tablename__ = "code_failures"
    __table_args__ = (Index("ix_code_failures_supplier_id_failed_at", "supplier_id", "failed_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    supplier_id: Mapped[str] = mapped_column(String(40))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
