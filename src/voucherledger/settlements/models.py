"""Settlements: one payout to one supplier for one programme."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime


class Settlement(Base):
    __tablename__ = "settlements"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_settlements_programme_id_id", "programme_id", "id"),
        Index("ix_settlements_supplier_id_id", "supplier_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"))
    supplier_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    # Minor units paid out: the supplier's payable in the programme at that moment.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payout_reference: Mapped[str] = mapped_column(String(200))
    transaction_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
