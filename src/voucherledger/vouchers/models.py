"""Vouchers. Their value lives in the ledger (``voucher:{id}`` spendable,
``voucher:{id}:held`` held by pending claims); this row holds what the ledger
does not: whose it is, its code, its categories, its status and expiry."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime

VOUCHER_STATUSES = ("active", "exhausted", "expired", "revoked")


# active: spendable; exhausted: nothing left, may come back to life by a void or refund;
# expired and revoked are final.
VoucherStatus = Literal["active", "exhausted", "expired", "revoked"]


class Voucher(Base):
    __tablename__ = "vouchers"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in VOUCHER_STATUSES) + ")", name="status"
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("reserve_amount >= 0 AND reserve_amount <= amount", name="reserve"),
        CheckConstraint(
            "reserve_returned >= 0 AND reserve_returned <= reserve_amount",
            name="reserve_returned",
        ),
        Index("ix_vouchers_programme_id_id", "programme_id", "id"),
        Index("ix_vouchers_group_id_programme_id", "group_id", "programme_id"),
        Index("ix_vouchers_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"))
    group_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    # Face value in minor units, and how much of it came from the women-led reserve.
    amount: Mapped[int] = mapped_column(BigInteger)
    reserve_amount: Mapped[int] = mapped_column(BigInteger)
    # How much of ``reserve_amount`` has gone back to the reserve since (revoke, expiry,
    # released holds and refunds after the voucher ended): the reserve share returns first.
    reserve_returned: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    service_categories: Mapped[list[str]] = mapped_column(JSON)
    # The integrator's own keys and values (issue 13: up to 20 keys, values up to
    # 500 characters); never read by the service. "metadata" is taken by SQLAlchemy.
    meta: Mapped[dict[str, str]] = mapped_column(
        "metadata", JSON, default=dict, server_default=text("'{}'")
    )
    status: Mapped[VoucherStatus] = mapped_column(String(10))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issue_transaction_id: Mapped[str] = mapped_column(String(40))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    ended_transaction_id: Mapped[str | None] = mapped_column(String(40))
    # Who issued it and who revoked it: a member id or an account key id (None for a
    # row written before migration 0009). An expiry is the sweep's: its journal
    # transaction says who ran it.
    created_by: Mapped[str | None] = mapped_column(String(40))
    revoked_by: Mapped[str | None] = mapped_column(String(40))
