"""SQL of evidence files and of the database store's blobs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from voucherledger.evidence.models import EvidenceBlob, EvidenceFile


def insert_blob(
    session: Session, sha256: str, media_type: str, content: bytes, now: datetime
) -> None:
    """Keep ``content`` under its hash unless it is there already: one blob per distinct
    content, and two uploads of the same bytes at once cannot both insert it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(EvidenceBlob)
        .values(
            sha256=sha256, size=len(content), media_type=media_type, content=content, created_at=now
        )
        .on_conflict_do_nothing(index_elements=["sha256"])
    )


def blob_content(session: Session, sha256: str) -> bytes | None:
    found = session.execute(
        select(EvidenceBlob.content).where(EvidenceBlob.sha256 == sha256)
    ).scalar_one_or_none()
    return None if found is None else bytes(found)


def add_file(session: Session, file: EvidenceFile) -> None:
    session.add(file)
    session.flush()


def get_file(session: Session, evidence_id: str) -> EvidenceFile | None:
    return session.get(EvidenceFile, evidence_id)


def files_by_id(session: Session, ids: Collection[str]) -> dict[str, EvidenceFile]:
    if not ids:
        return {}
    rows = session.execute(select(EvidenceFile).where(EvidenceFile.id.in_(sorted(set(ids)))))
    return {file.id: file for file in rows.scalars()}


def attach(
    session: Session, supplier_id: str, ids: Collection[str], redemption_id: str
) -> set[str]:
    """Point the supplier's free files ``ids`` at the claim; returns those it changed. A
    guarded update: a file another claim took meanwhile (or another supplier's) is left
    as it is, and missing from the answer."""
    changed = session.execute(
        update(EvidenceFile)
        .where(
            EvidenceFile.id.in_(sorted(set(ids))),
            EvidenceFile.account_id == supplier_id,
            EvidenceFile.redemption_id.is_(None),
        )
        .values(redemption_id=redemption_id)
        .returning(EvidenceFile.id)
        .execution_options(synchronize_session=False)
    )
    return set(changed.scalars())


def files_of(session: Session, redemption_ids: Collection[str]) -> dict[str, list[EvidenceFile]]:
    """The files backing each of these claims, in upload (id) order."""
    out: dict[str, list[EvidenceFile]] = defaultdict(list)
    wanted = sorted(set(redemption_ids))
    for start in range(0, len(wanted), 500):
        for file in session.execute(
            select(EvidenceFile)
            .where(EvidenceFile.redemption_id.in_(wanted[start : start + 500]))
            .order_by(EvidenceFile.id)
        ).scalars():
            if file.redemption_id is not None:
                out[file.redemption_id].append(file)
    return dict(out)
