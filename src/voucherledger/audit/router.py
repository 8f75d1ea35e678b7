"""``/v1/ledger/*`` (journal queries) and ``/v1/audit/*`` (exports, checkpoint)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from voucherledger.audit import service
from voucherledger.audit.giving360 import giving360_export
from voucherledger.audit.iati import iati_export
from voucherledger.audit.schemas import (
    BalanceOut,
    CheckpointOut,
    TransactionList,
    TransactionOut,
    TrialBalanceOut,
)
from voucherledger.audit.standards import ExportTally
from voucherledger.core.auth import Principal, require_roles
from voucherledger.core.errors import Forbidden, NotFound, problem_responses
from voucherledger.core.pagination import PageParams, page_params
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.session import get_session
from voucherledger.ledger.canonical import BLOCK_FORMAT, canonical_json
from voucherledger.ledger.export import Scope, chain_lines, jsonl_bytes
from voucherledger.ledger.sealer import latest_block, seal_pending

router = APIRouter(tags=["ledger and audit"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
Reader = Annotated[Principal, Depends(require_roles("funder", "manager", "auditor"))]
BalanceReader = Annotated[
    Principal, Depends(require_roles("funder", "manager", "auditor", "supplier", "group"))
]
TrialReader = Annotated[Principal, Depends(require_roles("funder", "manager", "auditor", "admin"))]
Exporter = Annotated[Principal, Depends(require_roles("auditor", "funder"))]
CheckpointReader = Annotated[Principal, Depends(require_roles("auditor", "funder", "admin"))]
ProgrammeFilter = Annotated[str | None, Query(max_length=40)]


@router.get(
    "/v1/ledger/transactions",
    operation_id="list_ledger_transactions",
    responses=problem_responses(Forbidden, NotFound),
)
def list_ledger_transactions(
    principal: Reader,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
    programme_id: ProgrammeFilter = None,
    account: Annotated[str | None, Query(max_length=200)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> TransactionList:
    """Journal transactions with their postings, of the caller's programmes."""
    return service.list_transactions(
        session,
        principal,
        programme_id=programme_id,
        account=account,
        since=since,
        until=until,
        after=page.after,
        limit=page.limit,
    )


@router.get(
    "/v1/ledger/transactions/{transaction_id}",
    operation_id="get_ledger_transaction",
    responses=problem_responses(Forbidden, NotFound),
)
def get_ledger_transaction(transaction_id: str, principal: Reader, session: DB) -> TransactionOut:
    return service.get_transaction(session, principal, transaction_id)


@router.get(
    "/v1/ledger/accounts/{account}/balance",
    operation_id="get_ledger_balance",
    responses=problem_responses(Forbidden, NotFound),
)
def get_ledger_balance(
    account: str, principal: BalanceReader, session: DB, as_of: AwareDatetime | None = None
) -> BalanceOut:
    """A ledger account's balance now (one row read) or as of an instant (its postings)."""
    return service.balance(session, principal, account, as_of)


@router.get(
    "/v1/ledger/trial-balance",
    operation_id="get_trial_balance",
    responses=problem_responses(Forbidden, NotFound),
)
def get_trial_balance(
    principal: TrialReader,
    session: DB,
    programme_id: ProgrammeFilter = None,
    as_of: AwareDatetime | None = None,
) -> TrialBalanceOut:
    """Every account's balance (from the programme's transactions); sums to zero per
    currency. Without ``programme_id``: the whole ledger, for admins."""
    return service.trial_balance(session, principal, programme_id, as_of)


def _seal_all(request: Request) -> None:
    state = request.app.state
    seal_pending(state.session_factory, state.signer, batch_size=state.settings.seal_batch_size)


@router.get(
    "/v1/audit/checkpoint",
    operation_id="get_checkpoint",
    responses=problem_responses(Forbidden, NotFound, validation=False),
)
async def get_checkpoint(principal: CheckpointReader, request: Request) -> CheckpointOut:
    """The latest signed seal block, after sealing everything pending."""
    await run_in_threadpool(_seal_all, request)

    def read() -> CheckpointOut:
        with request.app.state.session_factory() as session:
            block = latest_block(session)
        if block is None:
            raise NotFound("Nothing has been sealed yet.")
        return CheckpointOut(
            format=BLOCK_FORMAT,
            height=block.height,
            first_sequence=block.first_sequence,
            last_sequence=block.last_sequence,
            prev_hash=block.prev_hash,
            hash=block.hash,
            sealed_at=block.sealed_at,
            signature=block.signature,
            public_key=block.public_key,
        )

    return await run_in_threadpool(read)


_CSV_HEADER = [
    "transaction_id",
    "sequence",
    "kind",
    "created_at",
    "account",
    "amount",
    "currency",
    "programme_id",
    "actor",
    "memo",
]


def _csv_bytes(lines: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_CSV_HEADER)
    for line in lines:
        if line["type"] == "transaction":
            for leg in line["postings"]:
                writer.writerow(
                    [
                        line["id"],
                        line["sequence"],
                        line["kind"],
                        line["created_at"],
                        leg["account"],
                        leg["amount"],
                        leg["currency"],
                        line["programme_id"] or "",
                        line["actor"] or "",
                        line["memo"] or "",
                    ]
                )
        elif line["type"] == "manifest":
            writer.writerow([])
            writer.writerow(["# manifest", json.dumps(line, separators=(",", ":"))])
        if buffer.tell() > 65536:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


@router.get(
    "/v1/audit/export",
    operation_id="export_journal",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "application/x-ndjson": {},
                "text/csv": {},
                "application/xml": {},
                "application/json": {},
            },
            "description": "The export, streamed; a signed manifest ends it",
        },
        **problem_responses(Forbidden, NotFound),
    },
)
async def export_journal(
    principal: Exporter,
    request: Request,
    format: Annotated[Literal["jsonl", "csv", "iati", "360giving"], Query()] = "jsonl",
    programme_id: ProgrammeFilter = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> StreamingResponse:
    """The journal of the caller's programmes (or one of them), streamed. ``jsonl`` runs
    through the whole chain, other programmes' and other periods' positions redacted, so
    ``voucherledger verify`` can prove it complete; ``csv`` is one posting per row.
    Everything pending is sealed first, so an export is entirely sealed."""
    factory = request.app.state.session_factory

    def scope() -> list[str]:
        with factory() as session:
            return service.programme_scope(session, principal, programme_id)

    programme_ids = await run_in_threadpool(scope)
    await run_in_threadpool(_seal_all, request)
    stamp = datetime.now().strftime("%Y%m%d")  # noqa: DTZ005 - a file name only
    if format in ("iati", "360giving"):
        body = await run_in_threadpool(
            _standard_export, request, format, programme_ids, since, until
        )
        kind, suffix = (
            ("application/xml", "xml") if format == "iati" else ("application/json", "json")
        )
        return StreamingResponse(
            body,
            media_type=kind,
            headers={"Content-Disposition": f'attachment; filename="{format}-{stamp}.{suffix}"'},
        )
    lines = chain_lines(
        factory, Scope(frozenset(programme_ids), since, until), request.app.state.signer
    )
    if format == "csv":
        return StreamingResponse(
            _csv_bytes(lines),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="journal-{stamp}.csv"'},
        )
    return StreamingResponse(
        jsonl_bytes(lines),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="journal-{stamp}.jsonl"'},
    )


def _standard_export(
    request: Request,
    export_format: str,
    programme_ids: list[str],
    since: datetime | None,
    until: datetime | None,
) -> Iterator[bytes]:
    """Start an IATI or 360Giving writer (its errors surface here, before any byte is
    sent) and return its chunks followed by the signed manifest: an XML comment after
    the IATI document's root element, a ``voucherledger_manifest`` member closing the
    360Giving package."""
    state = request.app.state
    settings = state.settings
    if not programme_ids:
        raise NotFound("No programme to export.")
    session = state.session_factory(bind=state.read_engine)
    tally = ExportTally(format=export_format)
    try:
        if export_format == "iati":
            chunks = iati_export(
                session,
                programme_ids,
                reporting_org_ref=settings.iati_reporting_org_ref,
                reporting_org_name=settings.iati_reporting_org_name,
                reporting_org_type=settings.iati_reporting_org_type,
                since=since,
                until=until,
                tally=tally,
            )
        else:
            chunks = giving360_export(
                session,
                programme_ids,
                prefix=settings.giving360_prefix,
                since=since,
                until=until,
                tally=tally,
            )
    except BaseException:
        session.close()
        raise

    def manifest() -> dict[str, Any]:
        block = latest_block(session)
        document: dict[str, Any] = {
            **tally.as_dict(),
            "programme_ids": programme_ids,
            "block_height": block.height if block else 0,
            "last_sequence": block.last_sequence if block else 0,
            "head_hash": block.hash if block else None,
            "public_key": state.signer.public_key_hex,
        }
        document["signature"] = state.signer.sign(canonical_json(document))
        return document

    def stream() -> Iterator[bytes]:
        try:
            if export_format == "iati":
                yield from chunks
                text = json.dumps(manifest(), separators=(",", ":")).replace("--", "- -")
                yield f"<!-- voucherledger-manifest {text} -->\n".encode()
                return
            pending = b""
            for chunk in chunks:
                if pending:
                    yield pending
                pending = chunk
            closing = pending.rstrip()
            if not closing.endswith(b"}"):
                raise RuntimeError("a 360Giving package must end with '}'")
            member = json.dumps(manifest(), separators=(",", ":")).encode()
            yield closing[:-1] + b',"voucherledger_manifest":' + member + b"}\n"
        finally:
            session.close()

    return stream()
