"""Leases: which process does a piece of background work, across processes and nodes.

A lease row names the work (``name``), who holds it (``holder``, one per running
background loop) and until when (``expires_at``). A holder renews its lease while it
works; once the lease has expired, any other holder may take it. The work itself stays
safe if two holders ever overlap (each programme's sweep locks the programme row), so
the lease is about doing the work once, not about correctness.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
