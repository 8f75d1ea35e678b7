"""``/v1/programmes/{id}/report`` and ``/v1/programmes/{id}/suppliers``: what a programme did."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from voucherledger.core.auth import CurrentPrincipal, Principal, require_roles
from voucherledger.core.errors import Forbidden, NotFound, problem_responses
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.session import get_read_session, get_session
from voucherledger.programmes import service as programmes
from voucherledger.programmes.schemas import ProgrammeReport, ReportFormat, SupplierListing
from voucherledger.reporting import report, suppliers

router = APIRouter(prefix="/v1/programmes", tags=["programmes"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
# The report may come from the read replica (docs/operations.md); the supplier list, a
# short directory read just after an accreditation, stays on the primary.
ReadDB = Annotated[Session, Depends(get_read_session)]
Party = Annotated[Principal, Depends(require_roles("funder", "manager", "auditor"))]


@router.get(
    "/{programme_id}/suppliers",
    operation_id="list_programme_suppliers",
    responses=problem_responses(NotFound),
)
def list_programme_suppliers(
    programme_id: str, principal: CurrentPrincipal, session: DB
) -> list[SupplierListing]:
    """Accredited suppliers: for the programme's parties and the groups holding its vouchers."""
    return suppliers.supplier_list(session, principal, programme_id)


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
    session: ReadDB,
    report_format: Annotated[ReportFormat, Query(alias="format")] = "json",
) -> ProgrammeReport | Response:
    """Issuance, claims, settlement, returns and feedback, in total and by women-led,
    group type, origin country, service category and supplier."""
    programme = programmes.access(session, principal, programme_id).programme
    built = report.build(session, programme)
    if report_format == "csv":
        return Response(
            report.to_csv(built),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="report-{programme.id}.csv"'},
        )
    return built
