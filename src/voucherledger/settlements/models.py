"""Settlements: one payout to one supplier for one programme.

A settlement is ``proposed`` (the claims it covers are marked with it, no money
moved), then ``settled`` (the ``settle`` transaction is posted) or ``rejected``
(the claims are free again). A programme whose ``settlement_approval`` rule is
``single`` settles at once: the row is born ``settled``, its proposer being also
its approver. ``redemption_ids`` keeps the claims a settlement covered even after a
rejection has cleared their ``settlement_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime

SettlementStatus = Literal["proposed", "settled", "rejected"]


class Settlement(Base):
    __tablename__ = "settlements"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('proposed', 'settled', 'rejected')", name="status"),
        # Money has moved exactly when the settlement is settled.
        CheckConstraint(
            "(status = 'settled') = (transaction_id IS NOT NULL)", name="settled_has_transaction"
        ),
        Index("ix_settlements_programme_id_id", "programme_id", "id"),
        Index("ix_settlements_supplier_id_id", "supplier_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"))
    supplier_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    # Minor units paid (or to be paid) to the supplier: the net of the claims covered,
    # what the supplier's payable held for them when proposed.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payout_reference: Mapped[str] = mapped_column(String(200))
    # The supplier's payout IBAN when the settlement was proposed (null if it had none
    # set, or for a settlement made before migration 0010): what the funder pays to,
    # whatever the supplier changes meanwhile; the ``settle`` transaction records it.
    payout_iban: Mapped[str | None] = mapped_column(String(34))
    status: Mapped[SettlementStatus] = mapped_column(String(10))
    # The claims covered, sorted; kept when a rejection frees them.
    redemption_ids: Mapped[list[str]] = mapped_column(JSON)
    # The integrator's own keys and values (issue 13: up to 20 keys, values up to
    # 500 characters); never read by the service. "metadata" is taken by SQLAlchemy.
    meta: Mapped[dict[str, str]] = mapped_column(
        "metadata", JSON, default=dict, server_default=text("'{}'")
    )
    # The ``settle`` journal transaction; null until settled.
    transaction_id: Mapped[str | None] = mapped_column(String(40))
    # Actor refs (a member id, or an account key's id); null on settlements made
    # before people existed.
    proposed_by: Mapped[str | None] = mapped_column(String(40))
    approved_by: Mapped[str | None] = mapped_column(String(40))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejected_by: Mapped[str | None] = mapped_column(String(40))
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    # When it was proposed (for a single-approval programme, settled as well).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
