"""``/v1/accounts``, ``/v1/keys`` (``/v1/me`` is in ``people.session_router``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from voucherledger.accounts import service
from voucherledger.accounts.models import AccountKind
from voucherledger.accounts.schemas import (
    AccountCreate,
    AccountOut,
    AccountUpdate,
    KeyCreated,
    SupplierProfileUpdate,
)
from voucherledger.core.auth import CurrentPrincipal, Principal, require_roles
from voucherledger.core.corrections import ChangeOut
from voucherledger.core.errors import Forbidden, NotFound, ValidationFailed, problem_responses
from voucherledger.core.idempotency import redact_secrets
from voucherledger.core.pagination import Page, PageParams, page_params
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.session import get_session

router = APIRouter(prefix="/v1", tags=["accounts"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
# Keys are managed by the admin's own key or an owner of the admin account.
Admin = Annotated[Principal, Depends(require_roles("admin", member_role="owner"))]
Creator = Annotated[Principal, Depends(require_roles("admin", "funder", "manager"))]
DirectoryReader = Annotated[Principal, Depends(require_roles("admin", "funder", "manager"))]
# A supplier's profile is changed by its owners (or its own key) and the admin.
ProfileEditor = Annotated[
    Principal, Depends(require_roles("supplier", "admin", member_role="owner"))
]


@router.post(
    "/accounts",
    status_code=201,
    operation_id="create_account",
    responses=problem_responses(Forbidden),
)
def create_account(body: AccountCreate, principal: Creator, session: DB) -> AccountOut:
    """Create a party. The admin creates any kind; a funder or manager creates groups
    and suppliers (to onboard them: it may then invite the account's first owner)."""
    service.may_create(principal, body.kind)
    return service.create(session, body, created_by=principal.actor_ref)


@router.get("/accounts", operation_id="list_accounts", responses=problem_responses(Forbidden))
def list_accounts(
    principal: DirectoryReader,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
    kind: Annotated[AccountKind | None, Query()] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Only accounts whose name contains this, ignoring case.",
        ),
    ] = None,
) -> Page[AccountOut]:
    """The directory: everything for admins; groups and suppliers for funders and managers."""
    return service.directory(session, principal, kind, page.after, page.limit, q=q)


@router.get(
    "/accounts/{account_id}", operation_id="get_account", responses=problem_responses(NotFound)
)
def get_account(account_id: str, principal: CurrentPrincipal, session: DB) -> AccountOut:
    return service.get(session, principal, account_id)


@router.patch(
    "/accounts/{account_id}/supplier-profile",
    operation_id="update_supplier_profile",
    responses=problem_responses(Forbidden, NotFound),
)
def update_supplier_profile(
    account_id: str, body: SupplierProfileUpdate, principal: ProfileEditor, session: DB
) -> AccountOut:
    """A supplier's contact (``contact_email``, ``contact_phone``) and payout details
    (``payout_iban``, checked and stored compact; ``payout_bic``;
    ``payout_account_holder``). Only the fields sent change; null clears one. For an
    owner of the supplier (or its own key) and the admin; the payout details are shown
    to them and to the funders and managers of programmes accrediting the supplier."""
    return service.update_supplier_profile(session, principal, account_id, body)


@router.post(
    "/accounts/{account_id}/keys",
    status_code=201,
    operation_id="create_key",
    responses=problem_responses(Forbidden, NotFound),
)
def create_key(account_id: str, admin: Admin, session: DB, request: Request) -> KeyCreated:
    """A new API key for the account. The key is in this response only: a replay of the
    request (same ``Idempotency-Key``) returns the same id with ``key`` null."""
    redact_secrets(request, "key")
    return service.create_key(session, account_id, created_by=admin.actor_ref)


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    operation_id="revoke_key",
    responses=problem_responses(Forbidden, NotFound),
)
def revoke_key(key_id: str, principal: CurrentPrincipal, session: DB) -> Response:
    """Revoke a key: it stops working with the next request. The admin revokes any
    key; an account's owners revoke its keys; a member revokes its own personal keys.
    Another party's key is 404."""
    service.revoke_key(session, principal, key_id)
    return Response(status_code=204)


# An account's description is corrected by the account itself (its own key, or an
# owner among its members) and the admin.
AccountEditor = Annotated[
    Principal,
    Depends(
        require_roles(
            "admin", "funder", "manager", "group", "supplier", "auditor", member_role="owner"
        )
    ),
]


@router.patch(
    "/accounts/{account_id}",
    operation_id="update_account",
    responses=problem_responses(Forbidden, NotFound, ValidationFailed),
)
def update_account(
    account_id: str, body: AccountUpdate, principal: AccountEditor, session: DB
) -> AccountOut:
    """Correct an account's ``name``, ``country``, a group's profile (``group``: any of
    its fields) or ``metadata`` (replaced whole); its kind never changes. Only the
    fields sent change. Each change is recorded (``GET .../changes``) and emitted as
    one ``account.updated`` event with the previous values. For the account itself
    (its own key or an owner) and the admin; another account is 404."""
    return service.update(session, principal, account_id, body)


@router.get(
    "/accounts/{account_id}/changes",
    operation_id="list_account_changes",
    responses=problem_responses(NotFound),
)
def list_account_changes(
    account_id: str,
    principal: CurrentPrincipal,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ChangeOut]:
    """The account's recorded corrections, oldest first, for whoever may read the
    account (payout values only for those who may see payout details)."""
    return service.list_changes(session, principal, account_id, page.after, page.limit)
