"""``/v1/programmes`` and its deposits, accreditations, suspensions and close."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from voucherledger.core.auth import Principal, require_roles
from voucherledger.core.corrections import ChangeOut
from voucherledger.core.errors import (
    CategoryNotAllowed,
    Forbidden,
    NotFound,
    ProgrammeClosed,
    ValidationFailed,
    problem_responses,
)
from voucherledger.core.pagination import Page, PageParams, page_params
from voucherledger.core.routing import CommittingRoute, ledger_key
from voucherledger.core.session import get_session
from voucherledger.programmes import service
from voucherledger.programmes.schemas import (
    AccreditationCreate,
    AccreditationOut,
    DepositCreate,
    DepositOut,
    ProgrammeCreate,
    ProgrammeOut,
    ProgrammeUpdate,
)

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
    return service.create(session, principal, body)


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
    return service.get(session, principal, programme_id)


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
    return service.accredit(session, principal, programme_id, body)


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


@router.post(
    "/{programme_id}/close",
    operation_id="close_programme",
    responses=problem_responses(Forbidden, NotFound, ProgrammeClosed),
)
def close_programme(
    programme_id: str, principal: Funder, session: DB, request: Request
) -> ProgrammeOut:
    """No more issuance; the unissued budget returns to the funder."""
    return service.close(session, principal, programme_id, ledger_key(request))


@router.patch(
    "/{programme_id}",
    operation_id="update_programme",
    responses=problem_responses(Forbidden, NotFound, ValidationFailed),
)
def update_programme(
    programme_id: str, body: ProgrammeUpdate, principal: Funder, session: DB
) -> ProgrammeOut:
    """Correct the ``name``, the parties (``manager_ids`` / ``auditor_ids`` replace
    that list, checked as at creation) or ``metadata`` (replaced whole); only the
    fields sent change, and no money moves, so a closed programme may be corrected
    too. A removed manager's vouchers stay as issued. Each change is recorded
    (``GET .../changes``) and emitted as one ``programme.updated`` event with the
    previous values, to the parties before and after. For the funder."""
    return service.update(session, principal, programme_id, body)


@router.get(
    "/{programme_id}/changes",
    operation_id="list_programme_changes",
    responses=problem_responses(Forbidden, NotFound),
)
def list_programme_changes(
    programme_id: str,
    principal: Party,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ChangeOut]:
    """The programme's recorded corrections, oldest first, for its parties."""
    return service.list_changes(session, principal, programme_id, page.after, page.limit)
