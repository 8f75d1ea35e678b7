"""Evidence files and the content they point at.

A file is one upload by a supplier (``account_id``, who uploaded it in
``created_by``); its bytes are a blob keyed by their SHA-256, kept once however
often they are uploaded (``storage.DatabaseStore``). A file backs at most one
claim: ``redemption_id`` is null until a claim names it, then never changes.
The type is what the content is (its first bytes), never what the upload said.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime

MediaType = Literal["application/pdf", "image/jpeg", "image/png"]
MEDIA_TYPES: tuple[MediaType, ...] = ("application/pdf", "image/jpeg", "image/png")
_MEDIA_TYPE_CHECK = "media_type IN (" + ", ".join(f"'{m}'" for m in MEDIA_TYPES) + ")"


class EvidenceBlob(Base):
    """One distinct content, in the database store."""

    __tablename__ = "evidence_blobs"
    __table_args__ = (
        CheckConstraint("size > 0", name="size_positive"),
        CheckConstraint(_MEDIA_TYPE_CHECK, name="media_type"),
    )

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # lowercase hex
    size: Mapped[int] = mapped_column(BigInteger)  # bytes
    media_type: Mapped[MediaType] = mapped_column(String(40))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EvidenceFile(Base):
    """One upload. ``sha256``, ``size`` and ``media_type`` are copied from the blob, so a
    store that keeps the bytes elsewhere (an object store) still leaves them here."""

    __tablename__ = "evidence_files"
    __table_args__ = (
        CheckConstraint("size > 0", name="size_positive"),
        CheckConstraint(_MEDIA_TYPE_CHECK, name="media_type"),
        Index("ix_evidence_files_account_id_id", "account_id", "id"),
        Index("ix_evidence_files_redemption_id", "redemption_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))  # the supplier
    sha256: Mapped[str] = mapped_column(ForeignKey("evidence_blobs.sha256"))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[MediaType] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Who uploaded it: a member id, or the supplier's own key id.
    created_by: Mapped[str | None] = mapped_column(String(40))
    # The claim it backs; null until a claim names it.
    redemption_id: Mapped[str | None] = mapped_column(ForeignKey("redemptions.id"))
