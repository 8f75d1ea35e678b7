"""SQL of sign-in: members by email, sessions, the TOTP step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from voucherledger.accounts.models import Member
from voucherledger.people.session_models import WebSession


def active_members_by_email(
    session: Session, email_key: str, account_id: str | None, limit: int
) -> list[Member]:
    """The active members with this folded email (in one account, if given), in
    account order; along ``ix_members_email_key``."""
    query = select(Member).where(Member.email_key == email_key, Member.status == "active")
    if account_id is not None:
        query = query.where(Member.account_id == account_id)
    return list(session.execute(query.order_by(Member.account_id).limit(limit)).scalars())


def add_session(session: Session, web_session: WebSession) -> None:
    session.add(web_session)
    session.flush()


def get_session(session: Session, session_id: str) -> WebSession | None:
    return session.get(WebSession, session_id)


def revoke_session(session: Session, session_id: str, at: datetime) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=at)
    )


def use_totp_step(session: Session, member_id: str, step: int) -> bool:
    """Record ``step`` as the member's last TOTP step if it is later than the one
    recorded; False when it is not (the code was used already, perhaps concurrently)."""
    result: Any = session.execute(
        update(Member)
        .where(
            Member.id == member_id,
            or_(Member.totp_last_step.is_(None), Member.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


def purge_sessions(session: Session, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` sessions that expired before ``before``; returns how many.
    A revoked session is kept until its expiry too, then goes the same way."""
    oldest = select(WebSession.id).where(WebSession.expires_at < before).limit(batch)
    ids = list(session.execute(oldest).scalars())
    if ids:
        session.execute(delete(WebSession).where(WebSession.id.in_(ids)))
    return len(ids)
