"""Corrections that touch no money, recorded: who changed which field of which object,
when, from what to what.

A ``PATCH`` (an account's name or profile, a programme's name or parties, a voucher's
expiry) calls :func:`record_change` once per changed field, in the transaction that
changes it, next to the event it emits. The table is append-only by convention of the
code: nothing updates or deletes a row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from voucherledger.core.db import Base, UTCDateTime, utcnow
from voucherledger.core.ids import new_id


class ChangeRecord(Base):
    __tablename__ = "change_records"
    __table_args__ = (Index("ix_change_records_object", "object_type", "object_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    object_type: Mapped[str] = mapped_column(String(40))  # account | programme | voucher
    object_id: Mapped[str] = mapped_column(String(40))
    programme_id: Mapped[str | None] = mapped_column(String(40))
    field: Mapped[str] = mapped_column(String(60))
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    changed_by: Mapped[str | None] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


def record_change(
    session: Session,
    *,
    object_type: str,
    object_id: str,
    field: str,
    old: Any,
    new: Any,
    changed_by: str | None,
    programme_id: str | None = None,
    at: datetime | None = None,
) -> ChangeRecord:
    """Record one field's change (JSON values) in the caller's transaction."""
    record = ChangeRecord(
        id=new_id("chg"),
        object_type=object_type,
        object_id=object_id,
        programme_id=programme_id,
        field=field,
        old_value=old,
        new_value=new,
        changed_by=changed_by,
        changed_at=at or utcnow(),
    )
    session.add(record)
    return record


def changes_of(session: Session, object_type: str, object_id: str) -> list[ChangeRecord]:
    """An object's recorded changes, oldest first."""
    return list(
        session.execute(
            select(ChangeRecord)
            .where(ChangeRecord.object_type == object_type, ChangeRecord.object_id == object_id)
            .order_by(ChangeRecord.id)
        ).scalars()
    )
