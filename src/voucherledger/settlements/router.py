"""``/v1/settlements`` (listing); settling is ``POST /v1/programmes/{id}/settlements``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from voucherledger.core.auth import Principal, require_roles
from voucherledger.core.errors import Forbidden, NotFound, NothingToSettle, problem_responses
from voucherledger.core.pagination import PageParams, page_params
from voucherledger.core.routing import CommittingRoute, ledger_key
from voucherledger.core.session import get_session
from voucherledger.settlements import service
from voucherledger.settlements.schemas import SettlementCreate, SettlementList, SettlementOut

router = APIRouter(tags=["settlements"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
Funder = Annotated[Principal, Depends(require_roles("funder"))]
Reader = Annotated[Principal, Depends(require_roles("funder", "auditor", "supplier"))]


@router.post(
    "/v1/programmes/{programme_id}/settlements",
    status_code=201,
    operation_id="create_settlement",
    responses=problem_responses(Forbidden, NotFound, NothingToSettle),
)
def create_settlement(
    programme_id: str, body: SettlementCreate, principal: Funder, session: DB, request: Request
) -> SettlementOut:
    """Pay a supplier everything captured and unsettled in the programme."""
    return service.settle(session, principal, programme_id, body, ledger_key(request))


@router.get(
    "/v1/settlements", operation_id="list_settlements", responses=problem_responses(Forbidden)
)
def list_settlements(
    principal: Reader,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
    programme_id: Annotated[str | None, Query(max_length=40)] = None,
    supplier_id: Annotated[str | None, Query(max_length=40)] = None,
) -> SettlementList:
    """Settlements of the funder's or auditor's programmes, or the supplier's own."""
    return service.list_visible(
        session,
        principal,
        programme_id=programme_id,
        supplier_id=supplier_id,
        after=page.after,
        limit=page.limit,
    )
