"""Bodies of the evidence endpoints, and the reference a claim shows of each file."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from voucherledger.core.schemas import CREATED_BY, Schema
from voucherledger.evidence.models import MediaType


class EvidenceFileRef(Schema):
    """A file as a claim lists it: enough to fetch it and to check it is the one."""

    id: str
    sha256: str = Field(description="SHA-256 of the content, 64 lowercase hex digits.")
    size: int = Field(description="Bytes.")
    media_type: MediaType = Field(description="Decided by the content, not the upload's name.")


class EvidenceFileOut(EvidenceFileRef):
    created_at: datetime


class EvidenceFileMeta(EvidenceFileOut):
    redemption_id: str | None = Field(description="The claim it backs; null until one uses it.")
    created_by: str | None = Field(description="Who uploaded it. " + CREATED_BY)
