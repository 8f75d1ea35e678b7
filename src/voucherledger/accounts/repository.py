"""SQL of accounts and keys."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from voucherledger.accounts.models import Account, ApiKey


def get(session: Session, account_id: str) -> Account | None:
    return session.get(Account, account_id)


def list_by_kinds(
    session: Session, kinds: Collection[str], *, after: str | None, limit: int
) -> list[Account]:
    stmt = select(Account).where(Account.kind.in_(kinds)).order_by(Account.id).limit(limit)
    if after is not None:
        stmt = stmt.where(Account.id > after)
    return list(session.execute(stmt).scalars())


def add(session: Session, account: Account) -> None:
    session.add(account)
    session.flush()


def add_key(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


def get_key(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def any_admin_key(session: Session) -> bool:
    return (
        session.execute(
            select(ApiKey.id)
            .join(Account, Account.id == ApiKey.account_id)
            .where(Account.kind == "admin", ApiKey.revoked_at.is_(None))
            .limit(1)
        ).first()
        is not None
    )


def revoke_key(session: Session, key_id: str, at: datetime) -> None:
    session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=at)
    )
