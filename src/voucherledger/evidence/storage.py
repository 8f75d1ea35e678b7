"""Where evidence bytes live: a small interface, and the database store.

Content is addressed by its SHA-256: storing the same bytes twice keeps them once,
and a reader asks by hash. :class:`DatabaseStore`, the default, keeps them in the
``evidence_blobs`` table, so every node sees them and one database backup holds
them. An object store could implement :class:`EvidenceStore` later; the rows of
``evidence_files`` (hash, size, type, who, which claim) stay in the database either
way. Both methods run in the request's transaction: a put that is rolled back
leaves nothing behind in the database store.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from voucherledger.core.db import utcnow
from voucherledger.evidence import repository


class EvidenceStore(Protocol):
    def put(self, session: Session, sha256: str, media_type: str, content: bytes) -> None:
        """Keep ``content`` (whose SHA-256 is ``sha256``); a no-op if it is kept already."""
        ...

    def get(self, session: Session, sha256: str) -> bytes | None:
        """The content with this hash, or None if the store has none."""
        ...


class DatabaseStore:
    """Blobs in ``evidence_blobs``, one row per distinct content."""

    def put(self, session: Session, sha256: str, media_type: str, content: bytes) -> None:
        repository.insert_blob(session, sha256, media_type, content, utcnow())

    def get(self, session: Session, sha256: str) -> bytes | None:
        return repository.blob_content(session, sha256)
