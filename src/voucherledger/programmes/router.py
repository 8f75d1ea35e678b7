"""``/v1/programmes`` and its deposits, accreditations, suppliers, close and sweep."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from voucherledger.core.auth import CurrentPrincipal, Principal, require_roles
from voucherledger.core.errors import (
    CategoryNotAllowed,
    Forbidden,
    InsufficientFunds,
    NotFound,
    ProgrammeClosed,
    ValidationFailed,
    problem_responses,
)
from voucherledger.core.pagination import Page, PageParams, page_params
from voucherledger.core.routing import CommittingRoute, ledger_key
from voucherledger.core.session import get_session
from voucherledger.programmes import report, service
from voucherledger.programmes.schemas import (
    AccreditationCreate,
    AccreditationOut,
    DepositCreate,
    DepositOut,
    ProgrammeCreate,
    ProgrammeOut,
    ProgrammeReport,
    ReportFormat,
    SupplierListing,
    SweepOut,
)
from voucherledger.vouchers import service as vouchers

router = APIRouter(prefix="/v1/programmes", tags=["programmes"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
Funder = Annotated[Principal, Depends(require_roles("funder"))]
Issuer = Annotated[Principal, Depends(require_roles("funder", "manager"))]
Party = Annotated[Principal, Depends(require_roles("funder", "manager", "auditor"))]


@router.post(
    "",
    status_code=201,
    operation_id="create_programme",
    responses=problem_responses(Forbidden, ValidationFailed),
)
def create_programme(body: ProgrammeCreate, principal: Funder, session: DB) -> ProgrammeOut:
    """A new programme owned by the calling funder, with its rules and parties."""
    return service.to_out(session, service.create(session, principal, body))


@router.get("", operation_id="list_programmes", responses=problem_responses(Forbidden))
def list_programmes(
    principal: Party, session: DB, page: Annotated[PageParams, Depends(page_params)]
) -> Page[ProgrammeOut]:
    """The programmes the caller is a party of."""
    return service.list_visible(session, principal, page.after, page.limit)


@router.get(
    "/{programme_id}",
    operation_id="get_programme",
    responses=problem_responses(Forbidden, NotFound),
)
def get_programme(programme_id: str, principal: Party, session: DB) -> ProgrammeOut:
    return service.to_out(session, service.access(session, principal, programme_id).programme)


@router.post(
    "/{programme_id}/deposits",
    status_code=201,
    operation_id="create_deposit",
    responses=problem_responses(Forbidden, NotFound, ProgrammeClosed),
)
def create_deposit(
    programme_id: str, body: DepositCreate, principal: Funder, session: DB, request: Request
) -> DepositOut:
    """Money into the programme; the women-led reserve share goes to the reserve."""
    return service.deposit(session, principal, programme_id, body, ledger_key(request))


@router.post(
    "/{programme_id}/accreditations",
    status_code=201,
    operation_id="accredit_supplier",
    responses=problem_responses(Forbidden, NotFound, CategoryNotAllowed),
)
def accredit_supplier(
    programme_id: str, body: AccreditationCreate, principal: Issuer, session: DB
) -> AccreditationOut:
    """Accredit (or re-accredit) a supplier for some of the programme's categories."""
    return service.accreditation_out(service.accredit(session, principal, programme_id, body))


@router.delete(
    "/{programme_id}/accreditations/{supplier_id}",
    status_code=204,
    operation_id="suspend_supplier",
    responses=problem_responses(Forbidden, NotFound),
)
def suspend_supplier(
    programme_id: str, supplier_id: str, principal: Issuer, session: DB
) -> Response:
    """Suspend an accreditation: the supplier's later claims are refused."""
    service.suspend(session, principal, programme_id, supplier_id)
    return Response(status_code=204)


@router.get(
    "/{programme_id}/suppliers",
    operation_id="list_programme_suppliers",
    responses=problem_responses(NotFound),
)
def list_programme_suppliers(
    programme_id: str, principal: CurrentPrincipal, session: DB
) -> list[SupplierListing]:
    """Accredited suppliers: for the programme's parties and the groups holding its vouchers."""
    return service.supplier_list(session, principal, programme_id)


@router.post(
    "/{programme_id}/close",
    operation_id="close_programme",
    responses=problem_responses(Forbidden, NotFound, ProgrammeClosed),
)
def close_programme(
    programme_id: str, principal: Funder, session: DB, request: Request
) -> ProgrammeOut:
    """No more issuance; the unissued budget returns to the funder."""
    return service.to_out(
        session, service.close(session, principal, programme_id, ledger_key(request))
    )


@router.get(
    "/{programme_id}/report",
    operation_id="get_programme_report",
    response_model=ProgrammeReport,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "The report; with `format=csv`, one row per line under a header: "
            + ",".join(report.CSV_COLUMNS),
        },
        **problem_responses(Forbidden, NotFound),
    },
)
def get_programme_report(
    programme_id: str,
    principal: Party,
    session: DB,
    report_format: Annotated[ReportFormat, Query(alias="format")] = "json",
) -> ProgrammeReport | Response:
    """Issuance, claims, settlement, returns and feedback, in total and by women-led,
    group type, origin country, service category and supplier."""
    programme = service.access(session, principal, programme_id).programme
    built = report.build(session, programme)
    if report_format == "csv":
        return Response(
            report.to_csv(built),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="report-{programme.id}.csv"'},
        )
    return built


@router.post(
    "/{programme_id}/sweep",
    operation_id="sweep_programme",
    responses=problem_responses(Forbidden, NotFound),
)
def sweep_programme(programme_id: str, principal: Issuer, session: DB) -> SweepOut:
    """Expire vouchers past their expiry (value back to the budget)."""
    return vouchers.sweep(session, principal, programme_id)


@router.post(
    "/{programme_id}/vouchers",
    status_code=201,
    operation_id="issue_voucher",
    responses=problem_responses(
        Forbidden, NotFound, ProgrammeClosed, InsufficientFunds, ValidationFailed
    ),
)
def issue_voucher(
    programme_id: str,
    body: vouchers.VoucherCreate,
    principal: Issuer,
    session: DB,
    request: Request,
) -> vouchers.VoucherOut:
    """Issue one voucher to a group."""
    return vouchers.issue(
        session, principal, programme_id, [body], ledger_key=ledger_key(request), batch=False
    )[0]


@router.post(
    "/{programme_id}/vouchers/batch",
    status_code=201,
    operation_id="issue_voucher_batch",
    responses=problem_responses(
        Forbidden, NotFound, ProgrammeClosed, InsufficientFunds, ValidationFailed
    ),
)
def issue_voucher_batch(
    programme_id: str, body: vouchers.VoucherBatch, principal: Issuer, session: DB, request: Request
) -> vouchers.BatchOut:
    """Issue up to 10,000 vouchers, all or nothing: one bad item refuses the batch and
    ``errors`` lists ``{index, code, detail}`` of every bad item."""
    return vouchers.BatchOut(
        data=vouchers.issue(
            session,
            principal,
            programme_id,
            body.vouchers,
            ledger_key=ledger_key(request),
            batch=True,
        )
    )
