"""SQL of leases: taking or renewing one in a single statement, and giving it up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from voucherledger.sweep.models import Lease


def take_lease(session: Session, name: str, holder: str, now: datetime, until: datetime) -> bool:
    """Take the lease ``name`` until ``until`` if it is free, has expired, or is already
    ``holder``'s (then this renews it). One ``INSERT ... ON CONFLICT DO UPDATE ...
    WHERE``: concurrent takers are serialised on the row, and only one sees its update
    applied. The caller commits at once, so the row lock is held only briefly."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Lease).values(name=name, holder=holder, expires_at=until)
    upsert = stmt.on_conflict_do_update(
        index_elements=[Lease.name],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
        where=or_(Lease.expires_at <= now, Lease.holder == holder),
    ).returning(Lease.holder)
    return session.execute(upsert).first() is not None


def give_up_lease(session: Session, name: str, holder: str, now: datetime) -> None:
    """End ``holder``'s lease now, so that another process may take it at once."""
    session.execute(
        update(Lease).where(Lease.name == name, Lease.holder == holder).values(expires_at=now)
    )
