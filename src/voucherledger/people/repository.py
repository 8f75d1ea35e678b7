"""SQL of members, invitations and personal keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from voucherledger.accounts.models import ApiKey, Member
from voucherledger.core.pagination import keyset
from voucherledger.people.session_models import WebSession


def get(session: Session, member_id: str, *, for_update: bool = False) -> Member | None:
    """The member; ``for_update`` locks its row and reads it afresh (not from the
    session's identity map)."""
    stmt = select(Member).where(Member.id == member_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def get_by_invite(session: Session, token_hash: str) -> Member | None:
    """The member whose open invitation has this token, locked: two acceptances of one
    token are serialised, and the second finds the token cleared."""
    return session.execute(
        select(Member).where(Member.invite_token_hash == token_hash).with_for_update()
    ).scalar_one_or_none()


def email_taken(session: Session, account_id: str, email_key: str) -> bool:
    return (
        session.execute(
            select(Member.id).where(Member.account_id == account_id, Member.email_key == email_key)
        ).first()
        is not None
    )


def has_members(session: Session, account_id: str) -> bool:
    return (
        session.execute(select(Member.id).where(Member.account_id == account_id).limit(1)).first()
        is not None
    )


def has_keys(session: Session, account_id: str) -> bool:
    return (
        session.execute(select(ApiKey.id).where(ApiKey.account_id == account_id).limit(1)).first()
        is not None
    )


def acts_for(session: Session, actor_ref: str | None, account_id: str) -> bool:
    """Whether ``actor_ref`` (a member id or a key id, as ``created_by`` records) is a
    member or a key of the account."""
    if actor_ref is None:
        return False
    member = select(Member.id).where(Member.id == actor_ref, Member.account_id == account_id)
    key = select(ApiKey.id).where(ApiKey.id == actor_ref, ApiKey.account_id == account_id)
    return session.execute(member.union_all(key).limit(1)).first() is not None


def lock_active_owners(session: Session, account_id: str) -> list[str]:
    """The ids of the account's active owners, each row locked until the transaction
    ends: of two concurrent demotions of the last two owners, the second waits and then
    counts one (SQLite's write lock serialises them anyway)."""
    return list(
        session.execute(
            select(Member.id)
            .where(
                Member.account_id == account_id,
                Member.role == "owner",
                Member.status == "active",
            )
            .order_by(Member.id)
            .with_for_update()
        ).scalars()
    )


def list_for_account(
    session: Session, account_id: str, *, after: str | None, limit: int
) -> list[Member]:
    return keyset(
        session, select(Member).where(Member.account_id == account_id), Member.id, after, limit
    )


def add(session: Session, member: Member) -> None:
    session.add(member)
    session.flush()


def revoke_credentials(session: Session, member_id: str, at: datetime, by: str) -> None:
    """Revoke every personal key and every session of the member."""
    session.execute(
        update(ApiKey)
        .where(ApiKey.member_id == member_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=at, revoked_by=by)
    )
    session.execute(
        update(WebSession)
        .where(WebSession.member_id == member_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=at)
    )
