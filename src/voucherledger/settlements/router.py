"""``/v1/settlements``: listing, reading, approving and rejecting; settling (or
proposing) is ``POST /v1/programmes/{id}/settlements``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from voucherledger.core.auth import Principal, require_roles
from voucherledger.core.errors import (
    Forbidden,
    InvalidState,
    NotFound,
    NothingToSettle,
    SecondPersonRequired,
    TotpSetupRequired,
    problem_responses,
)
from voucherledger.core.pagination import (
    NO_FILTERS,
    ListFilters,
    PageParams,
    created_range,
    page_params,
)
from voucherledger.core.routing import CommittingRoute, ledger_key
from voucherledger.core.session import get_session
from voucherledger.settlements import service
from voucherledger.settlements.schemas import (
    SettlementCreate,
    SettlementList,
    SettlementOut,
    SettlementReject,
    SettlementStatusFilter,
)

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
    """Cover a supplier's captured claims that no settlement covers yet. With the
    programme rule ``settlement_approval: single`` they are paid at once (``settled``);
    with ``two_person`` the settlement is ``proposed`` and no money moves until a
    second person approves it."""
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
    status: Annotated[SettlementStatusFilter | None, Query()] = None,
    filters: Annotated[ListFilters, Depends(created_range)] = NO_FILTERS,
) -> SettlementList:
    """Settlements of the funder's or auditor's programmes, or the supplier's own."""
    return service.list_visible(
        session,
        principal,
        programme_id=programme_id,
        supplier_id=supplier_id,
        status=status,
        after=page.after,
        limit=page.limit,
        filters=filters,
    )


@router.get(
    "/v1/settlements/{settlement_id}",
    operation_id="get_settlement",
    responses=problem_responses(Forbidden, NotFound),
)
def get_settlement(settlement_id: str, principal: Reader, session: DB) -> SettlementOut:
    """A settlement of the funder's or auditor's programmes, or the supplier's own."""
    return service.get(session, principal, settlement_id)


@router.post(
    "/v1/settlements/{settlement_id}/approve",
    operation_id="approve_settlement",
    responses=problem_responses(
        Forbidden, SecondPersonRequired, TotpSetupRequired, NotFound, InvalidState
    ),
)
def approve_settlement(
    settlement_id: str, principal: Funder, session: DB, request: Request
) -> SettlementOut:
    """The second person pays a proposed settlement: a funder member with the approver
    or owner role and a confirmed second factor, other than the proposer. An account
    key is nobody and never approves."""
    return service.approve(session, principal, settlement_id, ledger_key(request))


@router.post(
    "/v1/settlements/{settlement_id}/reject",
    operation_id="reject_settlement",
    responses=problem_responses(Forbidden, NotFound, InvalidState),
)
def reject_settlement(
    settlement_id: str, body: SettlementReject, principal: Funder, session: DB
) -> SettlementOut:
    """Refuse a proposed settlement (its proposer may: a withdrawal): nothing is paid and
    its claims are free for the next proposal. Funder approvers, owners and the
    account's key."""
    return service.reject(session, principal, settlement_id, body)
