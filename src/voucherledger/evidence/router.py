"""``/v1/evidence``: a supplier uploads a document; the parties of its claim read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile
from sqlalchemy.orm import Session

from voucherledger.core.auth import CurrentPrincipal, Principal, require_roles
from voucherledger.core.errors import (
    EvidenceEmpty,
    EvidenceTooLarge,
    EvidenceTypeNotAllowed,
    Forbidden,
    NotFound,
    problem_responses,
)
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.session import get_session
from voucherledger.evidence import service
from voucherledger.evidence.models import MEDIA_TYPES
from voucherledger.evidence.schemas import EvidenceFileMeta, EvidenceFileOut
from voucherledger.evidence.storage import EvidenceStore

router = APIRouter(prefix="/v1/evidence", tags=["evidence"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
Supplier = Annotated[Principal, Depends(require_roles("supplier"))]


def _store(request: Request) -> EvidenceStore:
    store: EvidenceStore = request.app.state.evidence_store
    return store


def _claim_readable(request: Request) -> service.ClaimReadable:
    readable: service.ClaimReadable = request.app.state.claim_readable
    return readable


@router.post(
    "",
    status_code=201,
    operation_id="create_evidence",
    responses=problem_responses(Forbidden, EvidenceEmpty, EvidenceTypeNotAllowed, EvidenceTooLarge),
)
def create_evidence(
    file: Annotated[
        UploadFile, File(description="A PDF, JPEG or PNG, judged by its content; up to 10 MiB.")
    ],
    principal: Supplier,
    session: DB,
    request: Request,
) -> EvidenceFileOut:
    """Upload one evidence file (``multipart/form-data``, part ``file``), for a claim to
    name in ``evidence_ids``. The same content uploaded twice is stored once. A retry
    with the same ``Idempotency-Key`` and the same file content replays the answer."""
    limit: int = request.app.state.settings.evidence_max_bytes
    file.file.seek(0)  # a request run again after a deadlock reads the file again
    content = file.file.read(limit + 1)
    return service.upload(session, principal, content, store=_store(request), max_bytes=limit)


@router.get(
    "/{evidence_id}",
    operation_id="get_evidence",
    response_class=Response,
    responses={
        200: {
            "content": {media_type: {} for media_type in MEDIA_TYPES},
            "description": "The file's bytes, as an attachment.",
        },
        **problem_responses(NotFound),
    },
)
def get_evidence(
    evidence_id: str, principal: CurrentPrincipal, session: DB, request: Request
) -> Response:
    """The file, for the supplier that uploaded it, the admin, and whoever may read the
    claim it backs (its group; its programme's funder, managers and auditors). Anyone
    else gets 404, as for an unknown id."""
    file = service.visible(session, principal, evidence_id, _claim_readable(request))
    return Response(
        service.content(session, file, _store(request)),
        media_type=file.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{service.filename(file)}"',
            "ETag": f'"{file.sha256}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/{evidence_id}/meta",
    operation_id="get_evidence_meta",
    responses=problem_responses(NotFound),
)
def get_evidence_meta(
    evidence_id: str, principal: CurrentPrincipal, session: DB, request: Request
) -> EvidenceFileMeta:
    """What is known of the file (hash, size, type, who uploaded it, which claim it
    backs), for those who may fetch it."""
    return service.meta(service.visible(session, principal, evidence_id, _claim_readable(request)))
