"""``/v1/redemptions``: claims, decisions, refunds, feedback; and
``/v1/vouchers/validate``, the look-up a supplier makes before claiming."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from voucherledger.core.auth import Principal, require_roles
from voucherledger.core.errors import (
    AlreadySettled,
    CategoryNotAllowed,
    EvidenceInvalid,
    Forbidden,
    InsufficientFunds,
    InvalidState,
    NotFound,
    RateLimited,
    SettlementPending,
    SupplierNotAccredited,
    VoucherExhausted,
    VoucherExpired,
    VoucherRevoked,
    problem_responses,
)
from voucherledger.core.pagination import (
    METADATA_FILTER_DOC,
    NO_FILTERS,
    ListFilters,
    PageParams,
    created_and_metadata,
    page_params,
)
from voucherledger.core.routing import CommittingRoute, LookupRoute, ledger_key
from voucherledger.core.session import get_session
from voucherledger.redemptions import service
from voucherledger.redemptions.limiter import FailureLimiter
from voucherledger.redemptions.models import RedemptionStatus
from voucherledger.redemptions.schemas import (
    FeedbackCreate,
    FeedbackOut,
    Reason,
    RedemptionCreate,
    RedemptionList,
    RedemptionOut,
    RefundCreate,
    VoucherValidate,
    VoucherValidation,
)

router = APIRouter(prefix="/v1/redemptions", tags=["redemptions"], route_class=CommittingRoute)
# The look-up before a claim is documented with the vouchers it reads; it changes
# nothing, so it takes no Idempotency-Key.
validation = APIRouter(prefix="/v1/vouchers", tags=["vouchers"], route_class=LookupRoute)

DB = Annotated[Session, Depends(get_session)]
Supplier = Annotated[Principal, Depends(require_roles("supplier"))]
Group = Annotated[Principal, Depends(require_roles("group"))]
Refunder = Annotated[Principal, Depends(require_roles("supplier", "funder", "manager"))]
Reader = Annotated[
    Principal, Depends(require_roles("funder", "manager", "auditor", "supplier", "group"))
]


def _limiter(request: Request) -> FailureLimiter:
    limiter: FailureLimiter = request.app.state.code_limiter
    return limiter


@router.post(
    "",
    status_code=201,
    operation_id="create_redemption",
    responses=problem_responses(
        Forbidden,
        NotFound,
        VoucherExpired,
        VoucherRevoked,
        VoucherExhausted,
        InsufficientFunds,
        SupplierNotAccredited,
        CategoryNotAllowed,
        EvidenceInvalid,
        RateLimited,
    ),
)
def create_redemption(
    body: RedemptionCreate, principal: Supplier, session: DB, request: Request
) -> RedemptionOut:
    """Claim against a voucher code: a hold (``pending``) when the programme wants the
    group's confirmation, else ``captured`` at once. ``evidence_ids`` names uploaded
    evidence files (``POST /v1/evidence``) that back it."""
    return service.claim(
        session, principal, body, limiter=_limiter(request), ledger_key=ledger_key(request)
    )


@router.get(
    "",
    operation_id="list_redemptions",
    responses=problem_responses(Forbidden),
    openapi_extra=METADATA_FILTER_DOC,
)
def list_redemptions(
    principal: Reader,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
    programme_id: Annotated[str | None, Query(max_length=40)] = None,
    supplier_id: Annotated[str | None, Query(max_length=40)] = None,
    voucher_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[RedemptionStatus | None, Query()] = None,
    narrowed: Annotated[ListFilters, Depends(created_and_metadata)] = NO_FILTERS,
) -> RedemptionList:
    """Claims of the caller's programmes; suppliers and groups see their own."""
    return service.list_visible(
        session,
        principal,
        filters={
            "programme_id": programme_id,
            "supplier_id": supplier_id,
            "voucher_id": voucher_id,
            "status": status,
        },
        after=page.after,
        limit=page.limit,
        narrowed=narrowed,
    )


@router.get(
    "/{redemption_id}",
    operation_id="get_redemption",
    responses=problem_responses(Forbidden, NotFound),
)
def get_redemption(redemption_id: str, principal: Reader, session: DB) -> RedemptionOut:
    return service.get(session, principal, redemption_id)


@router.post(
    "/{redemption_id}/confirm",
    operation_id="confirm_redemption",
    responses=problem_responses(Forbidden, NotFound, InvalidState),
)
def confirm_redemption(
    redemption_id: str, principal: Group, session: DB, request: Request
) -> RedemptionOut:
    """The owning group confirms: pending -> captured."""
    return service.confirm(session, principal, redemption_id, ledger_key(request))


@router.post(
    "/{redemption_id}/reject",
    operation_id="reject_redemption",
    responses=problem_responses(Forbidden, NotFound, InvalidState),
)
def reject_redemption(
    redemption_id: str, body: Reason, principal: Group, session: DB, request: Request
) -> RedemptionOut:
    """The owning group rejects: pending -> voided, the hold is released."""
    return service.reject(session, principal, redemption_id, body.reason, ledger_key(request))


@router.post(
    "/{redemption_id}/cancel",
    operation_id="cancel_redemption",
    responses=problem_responses(Forbidden, NotFound, InvalidState),
)
def cancel_redemption(
    redemption_id: str, principal: Supplier, session: DB, request: Request
) -> RedemptionOut:
    """The supplier withdraws its own pending claim."""
    return service.cancel(session, principal, redemption_id, ledger_key(request))


@router.post(
    "/{redemption_id}/refunds",
    status_code=201,
    operation_id="refund_redemption",
    responses=problem_responses(
        Forbidden, NotFound, InvalidState, AlreadySettled, SettlementPending, InsufficientFunds
    ),
)
def refund_redemption(
    redemption_id: str, body: RefundCreate, principal: Refunder, session: DB, request: Request
) -> RedemptionOut:
    """Captured, unsettled value back to the voucher; partial refunds add up."""
    return service.refund(
        session, principal, redemption_id, body.amount, body.reason, ledger_key(request)
    )


@router.post(
    "/{redemption_id}/feedback",
    status_code=201,
    operation_id="create_feedback",
    responses=problem_responses(Forbidden, NotFound, InvalidState),
)
def create_feedback(
    redemption_id: str, body: FeedbackCreate, principal: Group, session: DB
) -> FeedbackOut:
    """The owning group rates a captured claim, once."""
    return service.feedback(session, principal, redemption_id, body)


@validation.post(
    "/validate",
    operation_id="validate_voucher",
    responses=problem_responses(
        Forbidden,
        NotFound,
        VoucherExpired,
        VoucherRevoked,
        VoucherExhausted,
        SupplierNotAccredited,
        RateLimited,
    ),
)
def validate_voucher(
    body: VoucherValidate, principal: Supplier, session: DB, request: Request
) -> VoucherValidation:
    """What a claim against the code could take now: programme, currency, spendable
    balance, and the voucher's categories your accreditation covers. The same look-up
    and refusals as a claim: a mistyped or unknown code (or one of a programme you are
    not accredited in: 404, as unknown) counts towards the failed-code limit. Nothing
    else is written."""
    return service.validate(session, principal, body.voucher_code, limiter=_limiter(request))
