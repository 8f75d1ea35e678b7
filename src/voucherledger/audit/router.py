"""HTTP of ``/v1/ledger/*`` (journal queries) and ``/v1/audit/*`` (exports, checkpoint):
the routes' parameters, roles, media types and file names. The reads are in
:mod:`~voucherledger.audit.service`, the export streams in :mod:`~voucherledger.audit.export`."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from voucherledger.audit import export, service
from voucherledger.audit.schemas import (
    BalanceOut,
    CheckpointOut,
    TransactionList,
    TransactionOut,
    TrialBalanceOut,
)
from voucherledger.core.auth import Principal, require_roles
from voucherledger.core.errors import (
    Forbidden,
    NotFound,
    SealingRefused,
    ValidationFailed,
    problem_responses,
)
from voucherledger.core.pagination import PageParams, page_params
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.schemas import UTCDateTimeIn
from voucherledger.core.session import get_read_session, get_session, read_session_factory
from voucherledger.ledger.errors import SigningKeyNotRecorded
from voucherledger.ledger.export import Scope
from voucherledger.ledger.sealer import seal_pending

router = APIRouter(tags=["ledger and audit"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
# The journal's list and trial balance (scans) may come from the read replica
# (docs/operations.md); a transaction by id and a balance, point reads often made just
# after the write that made them, stay on the primary.
ReadDB = Annotated[Session, Depends(get_read_session)]
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
    responses=problem_responses(Forbidden, NotFound, SealingRefused),
)
def list_ledger_transactions(
    principal: Reader,
    session: ReadDB,
    request: Request,
    page: Annotated[PageParams, Depends(page_params)],
    programme_id: ProgrammeFilter = None,
    account: Annotated[str | None, Query(max_length=200)] = None,
    since: UTCDateTimeIn | None = None,
    until: UTCDateTimeIn | None = None,
    after_sequence: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**62,
            description="Resume by seal sequence: only sealed transactions after it, in "
            "sequence order (everything pending is sealed first); not with `cursor`.",
        ),
    ] = None,
) -> TransactionList:
    """Journal transactions with their postings, of the caller's programmes. With
    ``after_sequence``, resumable: pass the ``next_after_sequence`` of a page to read
    what was sealed after it."""
    if after_sequence is not None:
        if page.after is not None:
            raise ValidationFailed(
                "cursor and after_sequence cannot be combined",
                [
                    {
                        "loc": ["query", "after_sequence"],
                        "msg": "not with cursor",
                        "type": "value_error",
                    }
                ],
            )
        _seal_all(request)
        # A fresh snapshot, which sees the seals just committed (SQLite keeps the one
        # its first read took until the transaction ends).
        session.rollback()
    return service.list_transactions(
        session,
        principal,
        programme_id=programme_id,
        account=account,
        since=since,
        until=until,
        after=page.after,
        limit=page.limit,
        after_sequence=after_sequence,
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
    account: str, principal: BalanceReader, session: DB, as_of: UTCDateTimeIn | None = None
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
    session: ReadDB,
    programme_id: ProgrammeFilter = None,
    as_of: UTCDateTimeIn | None = None,
) -> TrialBalanceOut:
    """Every account's balance (from the programme's transactions); sums to zero per
    currency. Without ``programme_id``: the whole ledger, for admins."""
    return service.trial_balance(session, principal, programme_id, as_of)


def _seal_all(request: Request) -> None:
    state = request.app.state
    try:
        seal_pending(state.session_factory, state.signer, batch_size=state.settings.seal_batch_size)
    except SigningKeyNotRecorded as exc:
        raise SealingRefused(str(exc)) from None


@router.get(
    "/v1/audit/checkpoint",
    operation_id="get_checkpoint",
    responses=problem_responses(Forbidden, NotFound, SealingRefused, validation=False),
)
async def get_checkpoint(principal: CheckpointReader, request: Request) -> CheckpointOut:
    """The latest signed seal block, after sealing everything pending."""
    await run_in_threadpool(_seal_all, request)

    def read() -> CheckpointOut:
        # Read where the exports read (the replica, when set): a checkpoint is then
        # never above the height a later export covers, so the export verifies with it.
        factory = read_session_factory(request, request.app.state.session_factory)
        with factory() as session:
            return service.checkpoint(session)

    return await run_in_threadpool(read)


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
        **problem_responses(Forbidden, NotFound, SealingRefused),
    },
)
async def export_journal(
    principal: Exporter,
    request: Request,
    format: Annotated[Literal["jsonl", "csv", "iati", "360giving"], Query()] = "jsonl",
    programme_id: ProgrammeFilter = None,
    since: UTCDateTimeIn | None = None,
    until: UTCDateTimeIn | None = None,
) -> StreamingResponse:
    """The journal of the caller's programmes (or one of them), streamed. ``jsonl`` runs
    through the whole chain, other programmes' and other periods' positions redacted, so
    ``voucherledger verify`` can prove it complete; ``csv`` is one posting per row.
    Everything pending is sealed first, so an export is entirely sealed."""
    state = request.app.state
    factory = state.session_factory

    def read_scope() -> list[str]:
        with factory() as session:
            return service.programme_scope(session, principal, programme_id)

    programme_ids = await run_in_threadpool(read_scope)
    await run_in_threadpool(_seal_all, request)
    # The export reads from the read replica when one is set: its manifest then says
    # the height the replica had replayed, which may be below what was just sealed.
    standard = format in ("iati", "360giving")
    reader = await run_in_threadpool(
        read_session_factory,
        request,
        partial(factory, bind=state.read_engine) if standard else factory,
    )
    stamp = datetime.now().strftime("%Y%m%d")  # noqa: DTZ005 - a file name only
    if standard:
        body = await run_in_threadpool(
            export.standard_export,
            reader,
            state.signer,
            state.settings,
            format,
            programme_ids,
            since,
            until,
        )
        kind, suffix = (
            ("application/xml", "xml") if format == "iati" else ("application/json", "json")
        )
        return StreamingResponse(
            body,
            media_type=kind,
            headers={"Content-Disposition": f'attachment; filename="{format}-{stamp}.{suffix}"'},
        )
    journal = Scope(frozenset(programme_ids), since, until)
    if format == "csv":
        return StreamingResponse(
            export.journal_csv(reader, journal, state.signer),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="journal-{stamp}.csv"'},
        )
    return StreamingResponse(
        export.journal_jsonl(reader, journal, state.signer),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="journal-{stamp}.jsonl"'},
    )
