"""``POST /v1/programmes/{id}/sweep``: expire vouchers and release timed-out holds now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from voucherledger.core.auth import Principal, require_roles
from voucherledger.core.errors import Forbidden, NotFound, problem_responses
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.session import get_session
from voucherledger.sweep import service
from voucherledger.sweep.schemas import SweepOut

router = APIRouter(prefix="/v1/programmes", tags=["programmes"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
Issuer = Annotated[Principal, Depends(require_roles("funder", "manager"))]


@router.post(
    "/{programme_id}/sweep",
    operation_id="sweep_programme",
    responses=problem_responses(Forbidden, NotFound),
)
def sweep_programme(programme_id: str, principal: Issuer, session: DB) -> SweepOut:
    """Expire vouchers past their expiry (value back to the budget)."""
    return service.sweep(session, principal, programme_id)
