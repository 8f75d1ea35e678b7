"""SQL of accounts and keys."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import String, func, select, table, update
from sqlalchemy import column as sa_column
from sqlalchemy.orm import Session

from voucherledger.accounts.models import Account, ApiKey
from voucherledger.core.pagination import keyset


def get(session: Session, account_id: str, *, for_update: bool = False) -> Account | None:
    """The account; ``for_update`` locks its row and reads it afresh."""
    if for_update:
        return session.get(Account, account_id, with_for_update=True, populate_existing=True)
    return session.get(Account, account_id)


def list_by_kinds(
    session: Session,
    kinds: Collection[str],
    *,
    after: str | None,
    limit: int,
    name_part: str | None = None,
) -> list[Account]:
    """``name_part``: names containing it, ignoring case (``%`` and ``_`` match
    themselves; SQLite folds the case of ASCII letters only)."""
    stmt = select(Account).where(Account.kind.in_(kinds))
    if name_part is not None:
        stmt = stmt.where(func.lower(Account.name).contains(name_part.lower(), autoescape=True))
    return keyset(session, stmt, Account.id, after, limit)


def add(session: Session, account: Account) -> None:
    session.add(account)
    session.flush()


def add_key(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


def get_key(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def list_keys(session: Session, account_id: str, *, after: str | None, limit: int) -> list[ApiKey]:
    """The account's keys, its own and its members' personal ones, revoked included."""
    return keyset(
        session, select(ApiKey).where(ApiKey.account_id == account_id), ApiKey.id, after, limit
    )


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


def revoke_key(session: Session, key_id: str, at: datetime, by: str) -> None:
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=at, revoked_by=by)
    )


def accounts_by_id(session: Session, ids: Collection[str]) -> dict[str, Account]:
    found: dict[str, Account] = {}
    wanted = list(ids)
    for start in range(0, len(wanted), 500):
        for account in session.execute(
            select(Account).where(Account.id.in_(wanted[start : start + 500]))
        ).scalars():
            found[account.id] = account
    return found


def count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Account)).scalar_one())


# The programme tables as this layer sees them (the programmes package sits above).
_programmes = table("programmes", sa_column("id", String), sa_column("funder_id", String))
_parties = table(
    "programme_parties",
    sa_column("programme_id", String),
    sa_column("account_id", String),
    sa_column("role", String),
)
_accreditations = table(
    "accreditations", sa_column("programme_id", String), sa_column("supplier_id", String)
)


def accredited_by(
    session: Session, kind: str, account_id: str, supplier_ids: Collection[str]
) -> set[str]:
    """Which of these suppliers a funder (or a manager) deals with: accredited, active
    or suspended, in a programme it funds (or manages)."""
    if not supplier_ids or kind not in ("funder", "manager"):
        return set()
    if kind == "funder":
        mine = select(_programmes.c.id).where(_programmes.c.funder_id == account_id)
    else:
        mine = select(_parties.c.programme_id).where(
            _parties.c.account_id == account_id, _parties.c.role == "manager"
        )
    rows = session.execute(
        select(_accreditations.c.supplier_id)
        .where(
            _accreditations.c.supplier_id.in_(sorted(set(supplier_ids))),
            _accreditations.c.programme_id.in_(mine),
        )
        .distinct()
    )
    return {str(supplier_id) for supplier_id in rows.scalars()}
