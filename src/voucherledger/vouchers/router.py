"""``/v1/vouchers``: list, read, QR image, revoke; and issuance under
``/v1/programmes/{id}/vouchers``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from voucherledger.core.auth import Principal, require_roles
from voucherledger.core.corrections import ChangeOut
from voucherledger.core.errors import (
    ExpiryNotExtended,
    Forbidden,
    InsufficientFunds,
    InvalidState,
    NotFound,
    ProgrammeClosed,
    ValidationFailed,
    VoucherExhausted,
    VoucherExpired,
    VoucherRevoked,
    problem_responses,
)
from voucherledger.core.pagination import (
    METADATA_FILTER_DOC,
    NO_FILTERS,
    ListFilters,
    Page,
    PageParams,
    created_and_metadata,
    page_params,
)
from voucherledger.core.routing import CommittingRoute, LookupRoute, ledger_key
from voucherledger.core.session import get_session
from voucherledger.vouchers import service
from voucherledger.vouchers.models import VoucherStatus
from voucherledger.vouchers.schemas import (
    BatchCheck,
    BatchOut,
    RevokeBody,
    VoucherBatch,
    VoucherCreate,
    VoucherList,
    VoucherOut,
    VoucherStatement,
    VoucherUpdate,
)

router = APIRouter(prefix="/v1/vouchers", tags=["vouchers"], route_class=CommittingRoute)
# Issuance is documented with the programme it draws on.
issuance = APIRouter(prefix="/v1/programmes", tags=["programmes"], route_class=CommittingRoute)
# The dry run of a batch writes nothing, so it takes no Idempotency-Key.
issuance_check = APIRouter(prefix="/v1/programmes", tags=["programmes"], route_class=LookupRoute)

DB = Annotated[Session, Depends(get_session)]
Reader = Annotated[Principal, Depends(require_roles("funder", "manager", "auditor", "group"))]
Issuer = Annotated[Principal, Depends(require_roles("funder", "manager"))]
CodeHolder = Annotated[Principal, Depends(require_roles("funder", "manager", "group"))]


@router.get(
    "",
    operation_id="list_vouchers",
    responses=problem_responses(Forbidden),
    openapi_extra=METADATA_FILTER_DOC,
)
def list_vouchers(
    principal: Reader,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
    programme_id: Annotated[str | None, Query(max_length=40)] = None,
    group_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[VoucherStatus | None, Query()] = None,
    filters: Annotated[ListFilters, Depends(created_and_metadata)] = NO_FILTERS,
) -> VoucherList:
    """Vouchers of the caller's programmes; a group sees only its own."""
    return service.list_visible(
        session,
        principal,
        programme_id=programme_id,
        group_id=group_id,
        status=status,
        after=page.after,
        limit=page.limit,
        filters=filters,
    )


@router.get(
    "/{voucher_id}", operation_id="get_voucher", responses=problem_responses(Forbidden, NotFound)
)
def get_voucher(voucher_id: str, principal: Reader, session: DB) -> VoucherOut:
    return service.get(session, principal, voucher_id)


@router.get(
    "/{voucher_id}/statement",
    operation_id="get_voucher_statement",
    responses=problem_responses(Forbidden, NotFound),
)
def get_voucher_statement(
    voucher_id: str,
    principal: Reader,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
) -> VoucherStatement:
    """Every movement of the voucher's value, from the ledger, oldest first: issue,
    claims held and captured, releases, refunds, revocation or expiry; paginated as
    other lists (``limit`` up to 500, ``cursor``). For the group holding it and the
    programme's parties."""
    return service.statement(session, principal, voucher_id, after=page.after, limit=page.limit)


@router.get(
    "/{voucher_id}/qr.svg",
    operation_id="get_voucher_qr",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "QR code"},
        **problem_responses(Forbidden, NotFound),
    },
)
def get_voucher_qr(voucher_id: str, principal: CodeHolder, session: DB) -> Response:
    """The voucher's code as a QR image, for the funder, its managers and the owning group."""
    return Response(service.qr_svg(session, principal, voucher_id), media_type="image/svg+xml")


@router.post(
    "/{voucher_id}/revoke",
    operation_id="revoke_voucher",
    responses=problem_responses(Forbidden, NotFound, InvalidState),
)
def revoke_voucher(
    voucher_id: str, body: RevokeBody, principal: Issuer, session: DB, request: Request
) -> VoucherOut:
    """Revoke: the voucher's remaining, unheld value returns to the programme's budget."""
    return service.revoke(session, principal, voucher_id, body.reason, ledger_key(request))


@issuance.post(
    "/{programme_id}/vouchers",
    status_code=201,
    operation_id="issue_voucher",
    responses=problem_responses(
        Forbidden, NotFound, ProgrammeClosed, InsufficientFunds, ValidationFailed
    ),
)
def issue_voucher(
    programme_id: str,
    body: VoucherCreate,
    principal: Issuer,
    session: DB,
    request: Request,
) -> VoucherOut:
    """Issue one voucher to a group."""
    return service.issue(
        session, principal, programme_id, [body], ledger_key=ledger_key(request), batch=False
    )[0]


@issuance.post(
    "/{programme_id}/vouchers/batch",
    status_code=201,
    operation_id="issue_voucher_batch",
    responses=problem_responses(
        Forbidden, NotFound, ProgrammeClosed, InsufficientFunds, ValidationFailed
    ),
)
def issue_voucher_batch(
    programme_id: str, body: VoucherBatch, principal: Issuer, session: DB, request: Request
) -> BatchOut:
    """Issue up to 10,000 vouchers, all or nothing: one bad item refuses the batch and
    ``errors`` lists ``{index, code, detail}`` of every bad item."""
    return BatchOut(
        data=service.issue(
            session,
            principal,
            programme_id,
            body.vouchers,
            ledger_key=ledger_key(request),
            batch=True,
        )
    )


@issuance_check.post(
    "/{programme_id}/vouchers/batch/check",
    operation_id="check_voucher_batch",
    responses=problem_responses(Forbidden, NotFound, ProgrammeClosed),
)
def check_voucher_batch(
    programme_id: str, body: VoucherBatch, principal: Issuer, session: DB
) -> BatchCheck:
    """A dry run of ``POST .../vouchers/batch`` with the same body: the same checks, in
    the same order, against the budget and the groups' totals now; nothing is written
    or locked. ``errors`` lists every item the batch would refuse as ``{index, code,
    detail}`` (empty and ``valid`` true when it would be issued). A closed programme
    is refused as a whole, as issuing is."""
    return service.check(session, principal, programme_id, body.vouchers)


@router.patch(
    "/{voucher_id}",
    operation_id="update_voucher",
    responses=problem_responses(
        Forbidden,
        NotFound,
        ExpiryNotExtended,
        VoucherExpired,
        VoucherRevoked,
        VoucherExhausted,
        ValidationFailed,
    ),
)
def update_voucher(
    voucher_id: str, body: VoucherUpdate, principal: Issuer, session: DB
) -> VoucherOut:
    """Extend an active voucher's ``expires_at`` (later than now's, 422
    ``expiry_not_extended`` otherwise; not past the programme's ``ends_at``) or
    replace its ``metadata``. No money moves. Each change is recorded (``GET
    .../changes``) and emitted as one ``voucher.updated`` event with the previous
    values. For the programme's funder and managers."""
    return service.update(session, principal, voucher_id, body)


@router.get(
    "/{voucher_id}/changes",
    operation_id="list_voucher_changes",
    responses=problem_responses(Forbidden, NotFound),
)
def list_voucher_changes(
    voucher_id: str,
    principal: Reader,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ChangeOut]:
    """The voucher's recorded corrections, oldest first, for the group holding it and
    the programme's parties."""
    return service.list_changes(session, principal, voucher_id, page.after, page.limit)
