"""Evidence: a supplier's uploads, who may read them, and a claim's use of them.

An upload is refused, writing nothing, when it is empty (422 ``evidence_empty``),
above ``evidence_max_bytes`` (413 ``evidence_too_large``) or not a PDF, JPEG or PNG
by its first bytes (415 ``evidence_type_not_allowed``): the name and the Content-Type
the client gave are never asked.

Who may read a file: the supplier that uploaded it and the admin; once a claim uses
it, also whoever may read that claim (its group; the funder, managers and auditors
of its programme). That claim rule belongs to ``redemptions``, which sits above this
package: the app hands it in as a :data:`ClaimReadable` (``app.state.claim_readable``),
as it hands ``core`` the ledger's key check. Anyone else gets the 404 a missing id gets.

A claim names its files by id: each must be the claiming supplier's own and free; the
claim then points them at itself with one guarded update, in its own transaction, so
two claims racing for one file cannot both have it (:func:`attach`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy.orm import Session

from voucherledger.core.auth import Principal
from voucherledger.core.db import utcnow
from voucherledger.core.errors import (
    EvidenceEmpty,
    EvidenceInvalid,
    EvidenceTooLarge,
    EvidenceTypeNotAllowed,
    NotFound,
)
from voucherledger.core.ids import new_id
from voucherledger.evidence import repository
from voucherledger.evidence.models import EvidenceFile, MediaType
from voucherledger.evidence.schemas import EvidenceFileMeta, EvidenceFileOut, EvidenceFileRef
from voucherledger.evidence.storage import EvidenceStore

# The first bytes of each type accepted, as its format defines them.
SIGNATURES: tuple[tuple[bytes, MediaType], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
EXTENSIONS: dict[str, str] = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}

# Whether the principal may read this claim (``redemptions.service.readable``).
ClaimReadable = Callable[[Session, Principal, str], bool]


def sniff(content: bytes) -> MediaType | None:
    """The type the content's first bytes say, if it is one accepted."""
    for signature, media_type in SIGNATURES:
        if content.startswith(signature):
            return media_type
    return None


def upload(
    session: Session,
    principal: Principal,
    content: bytes,
    *,
    store: EvidenceStore,
    max_bytes: int,
) -> EvidenceFileOut:
    if not content:
        raise EvidenceEmpty("The evidence file is empty.")
    if len(content) > max_bytes:
        raise EvidenceTooLarge(f"An evidence file may hold at most {max_bytes} bytes.")
    media_type = sniff(content)
    if media_type is None:
        raise EvidenceTypeNotAllowed(
            "Evidence must be a PDF, JPEG or PNG file (judged by its content, not its name)."
        )
    sha256 = hashlib.sha256(content).hexdigest()
    store.put(session, sha256, media_type, content)
    file = EvidenceFile(
        id=new_id("evd"),
        account_id=principal.account_id,
        sha256=sha256,
        size=len(content),
        media_type=media_type,
        created_at=utcnow(),
        created_by=principal.actor_ref,
        redemption_id=None,
    )
    repository.add_file(session, file)
    return EvidenceFileOut.model_validate(file)


def visible(
    session: Session, principal: Principal, evidence_id: str, claim_readable: ClaimReadable
) -> EvidenceFile:
    file = repository.get_file(session, evidence_id)
    if file is None:
        raise NotFound(f"No evidence file {evidence_id}.")
    if principal.kind == "admin" or file.account_id == principal.account_id:
        return file
    if file.redemption_id is not None and claim_readable(session, principal, file.redemption_id):
        return file
    raise NotFound(f"No evidence file {evidence_id}.")


def meta(file: EvidenceFile) -> EvidenceFileMeta:
    return EvidenceFileMeta.model_validate(file)


def content(session: Session, file: EvidenceFile, store: EvidenceStore) -> bytes:
    found = store.get(session, file.sha256)
    if found is None:
        raise RuntimeError(f"the content of evidence file {file.id} is missing from the store")
    return found


def filename(file: EvidenceFile) -> str:
    return f"{file.id}.{EXTENSIONS[file.media_type]}"


# --- claims ------------------------------------------------------------------------


def for_claim(session: Session, supplier_id: str, ids: Sequence[str]) -> list[EvidenceFile]:
    """The files a claim names, in id order: 422 ``evidence_invalid`` listing each id that
    is not the supplier's own free upload. Another supplier's file is reported as an
    unknown one, so an id reveals nothing."""
    found = repository.files_by_id(session, ids)
    errors: list[dict[str, Any]] = []
    for index, evidence_id in enumerate(ids):
        file = found.get(evidence_id)
        loc: list[str | int] = ["body", "evidence_ids", index]
        if file is None or file.account_id != supplier_id:
            errors.append(
                {"loc": loc, "msg": f"no upload of yours is {evidence_id}", "type": "unknown"}
            )
        elif file.redemption_id is not None:
            errors.append(
                {
                    "loc": loc,
                    "msg": f"{evidence_id} backs claim {file.redemption_id} already",
                    "type": "used",
                }
            )
    if errors:
        raise EvidenceInvalid(
            "Some evidence_ids are not your own uploads free for a claim; see errors.", errors
        )
    return sorted(found.values(), key=lambda file: file.id)


def attach(
    session: Session, supplier_id: str, files: Collection[EvidenceFile], redemption_id: str
) -> None:
    """Point the files at the new claim (its row written already). A file another claim
    took since :func:`for_claim` read it refuses this claim (the request rolls back)."""
    if not files:
        return
    changed = repository.attach(session, supplier_id, [file.id for file in files], redemption_id)
    lost = sorted(file.id for file in files if file.id not in changed)
    if lost:
        raise EvidenceInvalid(
            "Some evidence_ids were taken by another claim meanwhile; see errors.",
            [
                {
                    "loc": ["body", "evidence_ids"],
                    "msg": f"{eid} backs another claim",
                    "type": "used",
                }
                for eid in lost
            ],
        )


def refs(files: Collection[EvidenceFile]) -> list[EvidenceFileRef]:
    return [EvidenceFileRef.model_validate(f) for f in files]


def ledger_entries(files: Collection[EvidenceFile]) -> list[dict[str, Any]]:
    """What a claim's journal transaction records of its files, so the sealed chain
    proves which content backed which payment."""
    return [{"sha256": f.sha256, "size": f.size, "media_type": f.media_type} for f in files]


def refs_of(session: Session, redemption_ids: Collection[str]) -> dict[str, list[EvidenceFileRef]]:
    """The files of each claim, as claims show them."""
    return {rid: refs(files) for rid, files in repository.files_of(session, redemption_ids).items()}
