"""SQL of programmes, their parties and accreditations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, case, func, select, union
from sqlalchemy.orm import Session

from voucherledger.accounts.models import Account
from voucherledger.core.pagination import keyset
from voucherledger.ledger.models import JournalTransaction, Posting
from voucherledger.programmes.models import Accreditation, Programme, ProgrammeParty


def get(session: Session, programme_id: str, *, for_update: bool = False) -> Programme | None:
    stmt = select(Programme).where(Programme.id == programme_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def lock_for_sweep(session: Session, programme_id: str) -> Programme | None:
    """The programme row locked ``FOR NO KEY UPDATE``: sweeps of one programme queue
    behind each other and behind issuance and closing (``FOR UPDATE``), but a claim's
    foreign-key check on the row (``FOR KEY SHARE``, taken after the claim holds its
    voucher's ledger account) does not wait for the sweep — which would deadlock with a
    sweep waiting for that voucher. SQLite, with one writer at a time, ignores it."""
    stmt = (
        select(Programme)
        .where(Programme.id == programme_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return session.execute(stmt).scalar_one_or_none()


def add(session: Session, programme: Programme, parties: list[ProgrammeParty]) -> None:
    session.add(programme)
    session.add_all(parties)
    session.flush()


def parties(session: Session, programme_id: str) -> list[ProgrammeParty]:
    return list(
        session.execute(
            select(ProgrammeParty)
            .where(ProgrammeParty.programme_id == programme_id)
            .order_by(ProgrammeParty.account_id)
        ).scalars()
    )


def programme_readers(session: Session, programme_id: str) -> list[str]:
    """Who reads the programme's events: its funder, managers and auditors (one query,
    no cache: a party added since is a reader at once)."""
    stmt = union(
        select(Programme.funder_id).where(Programme.id == programme_id),
        select(ProgrammeParty.account_id).where(ProgrammeParty.programme_id == programme_id),
    )
    return sorted({account_id for (account_id,) in session.execute(stmt)})


def party_role(session: Session, programme_id: str, account_id: str) -> str | None:
    return session.execute(
        select(ProgrammeParty.role).where(
            ProgrammeParty.programme_id == programme_id, ProgrammeParty.account_id == account_id
        )
    ).scalar_one_or_none()


def list_for(
    session: Session, account_id: str, kind: str, *, after: str | None, limit: int
) -> list[Programme]:
    stmt = select(Programme)
    if kind == "funder":
        stmt = stmt.where(Programme.funder_id == account_id)
    else:
        stmt = stmt.where(
            Programme.id.in_(
                select(ProgrammeParty.programme_id).where(ProgrammeParty.account_id == account_id)
            )
        )
    return keyset(session, stmt, Programme.id, after, limit)


def party_programme_ids(account_id: str, kind: str) -> Select[Any] | None:
    """The ids of the programmes the caller is a party of: as their funder, or as a
    manager or auditor the funder named. None for other kinds of account."""
    if kind == "funder":
        return select(Programme.id).where(Programme.funder_id == account_id)
    if kind in ("manager", "auditor"):
        return select(ProgrammeParty.programme_id).where(
            ProgrammeParty.account_id == account_id, ProgrammeParty.role == kind
        )
    return None


def get_accreditation(
    session: Session, programme_id: str, supplier_id: str
) -> Accreditation | None:
    return session.get(Accreditation, (programme_id, supplier_id))


def add_accreditation(session: Session, accreditation: Accreditation) -> None:
    session.add(accreditation)
    session.flush()


def suppliers(session: Session, programme_id: str) -> list[tuple[Accreditation, str]]:
    rows = session.execute(
        select(Accreditation, Account.name)
        .join(Account, Account.id == Accreditation.supplier_id)
        .where(Accreditation.programme_id == programme_id)
        .order_by(Accreditation.created_at, Accreditation.supplier_id)
    ).all()
    return [(accreditation, name) for accreditation, name in rows]


def ledger_sums(session: Session, programme_id: str) -> dict[tuple[str, str], int]:
    """Sums of the programme's postings by (transaction kind, account class)."""
    code = Posting.account_code
    account_class = case(
        (code.like("funder:%"), "funder"),
        (code.like("programme:%:unissued"), "unissued"),
        (code.like("programme:%:women_led_reserve"), "reserve"),
        (code.like("voucher:%:held"), "held"),
        (code.like("voucher:%"), "voucher"),
        (code.like("supplier:%:payable:%"), "payable"),
        (code.like("supplier:%:paid%"), "paid"),
        else_="other",
    ).label("account_class")
    rows = session.execute(
        select(JournalTransaction.kind, account_class, func.sum(Posting.amount))
        .join(JournalTransaction, JournalTransaction.id == Posting.transaction_id)
        .where(JournalTransaction.programme_id == programme_id)
        .group_by(JournalTransaction.kind, account_class)
    ).all()
    return {(kind, cls): int(total) for kind, cls, total in rows}


def ids(session: Session, *, only: str | None = None) -> list[str]:
    """Every programme's id in order (or ``[only]`` if it exists)."""
    stmt = select(Programme.id).order_by(Programme.id)
    if only is not None:
        stmt = stmt.where(Programme.id == only)
    return list(session.execute(stmt).scalars())


def replace_parties(session: Session, programme_id: str, wanted: dict[str, str]) -> None:
    """Make the programme's managers and auditors exactly ``wanted`` (account id to
    role); the caller holds the programme row locked."""
    existing = {p.account_id: p for p in parties(session, programme_id)}
    for account_id, party in existing.items():
        if account_id not in wanted:
            session.delete(party)
    session.flush()
    for account_id, role in wanted.items():
        if account_id in existing:
            existing[account_id].role = role  # type: ignore[assignment]
        else:
            session.add(ProgrammeParty(programme_id=programme_id, account_id=account_id, role=role))
    session.flush()
