"""``/v1/accounts/{id}/members``, ``/v1/accounts/{id}/keys`` (listed for the same
people who manage the members), ``/v1/members``, ``/v1/invites/accept``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from voucherledger.accounts.models import ACCOUNT_KINDS
from voucherledger.accounts.schemas import KeyOut
from voucherledger.core.auth import CurrentPrincipal, Principal, require_roles
from voucherledger.core.errors import (
    DatabaseUnavailable,
    Forbidden,
    InvalidState,
    InviteExpired,
    InviteInvalid,
    LastOwner,
    MemberExists,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    WeakPassword,
    add_problems,
    problem_responses,
)
from voucherledger.core.idempotency import redact_secrets
from voucherledger.core.pagination import Page, PageParams, page_params
from voucherledger.core.routing import CommittingRoute, UnauthenticatedRoute
from voucherledger.core.session import get_session
from voucherledger.core.settings import Settings
from voucherledger.people import service
from voucherledger.people.passwords import passwords_for
from voucherledger.people.schemas import (
    InviteAccept,
    MemberCreate,
    MemberInvited,
    MemberOut,
    MemberUpdate,
    PersonalKeyCreated,
)

router = APIRouter(prefix="/v1", tags=["members"], route_class=CommittingRoute)
# Routes for a caller who has no key yet: no Idempotency-Key (it is per account).
public = APIRouter(prefix="/v1", tags=["members"], route_class=UnauthenticatedRoute)

DB = Annotated[Session, Depends(get_session)]
# Any account's principal; a viewer member is refused every change (403).
Writer = Annotated[Principal, Depends(require_roles(*ACCOUNT_KINDS))]


async def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(app_settings)]


def _ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.invite_ttl_hours)


@router.post(
    "/accounts/{account_id}/members",
    status_code=201,
    operation_id="invite_member",
    responses=problem_responses(Forbidden, NotFound, MemberExists),
)
def invite_member(
    account_id: str,
    body: MemberCreate,
    principal: Writer,
    session: DB,
    settings: AppSettings,
    request: Request,
) -> MemberInvited:
    """Invite a person into the account, with a role. Admin, or an owner of the account;
    a funder or manager may invite the first owner of a group or supplier that has
    neither members nor keys. ``invite_token`` is in this response only (a replay with
    the same ``Idempotency-Key`` returns it null): hand it to the person, who accepts
    with ``POST /v1/invites/accept`` before ``invite_expires_at``."""
    redact_secrets(request, "invite_token")
    return service.invite(session, principal, account_id, body, _ttl(settings))


@router.get(
    "/accounts/{account_id}/members",
    operation_id="list_members",
    responses=problem_responses(Forbidden, NotFound),
)
def list_members(
    account_id: str,
    principal: CurrentPrincipal,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[MemberOut]:
    """The account's members, invited and disabled ones included. Admin or owners."""
    return service.list_members(session, principal, account_id, page.after, page.limit)


@router.get(
    "/accounts/{account_id}/keys",
    operation_id="list_keys",
    responses=problem_responses(Forbidden, NotFound),
)
def list_keys(
    account_id: str,
    principal: CurrentPrincipal,
    session: DB,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[KeyOut]:
    """The account's API keys: its own keys (``member_id`` null) and its members'
    personal keys, revoked ones included, in creation order. Never a secret or its
    hash. Admin or owners, as for the members; revoke one with ``DELETE
    /v1/keys/{key_id}``."""
    return service.list_keys(session, principal, account_id, page.after, page.limit)


@router.get(
    "/members/{member_id}",
    operation_id="get_member",
    responses=problem_responses(Forbidden, NotFound),
)
def get_member(member_id: str, principal: CurrentPrincipal, session: DB) -> MemberOut:
    """A member: for the admin, the account's owners, and the member itself."""
    return service.get(session, principal, member_id)


@router.patch(
    "/members/{member_id}",
    operation_id="update_member",
    responses=problem_responses(Forbidden, NotFound, InvalidState, LastOwner),
)
def update_member(member_id: str, body: MemberUpdate, principal: Writer, session: DB) -> MemberOut:
    """Change a member's name, role or status (``active`` or ``disabled``). Admin or
    owners. A disabled member's personal keys and sessions stop at their next request.
    The last active owner can be neither demoted nor disabled (409 ``last_owner``)."""
    return service.update(session, principal, member_id, body)


@router.post(
    "/members/{member_id}/invite",
    operation_id="reinvite_member",
    responses=problem_responses(Forbidden, NotFound, InvalidState),
)
def reinvite_member(
    member_id: str, principal: Writer, session: DB, settings: AppSettings, request: Request
) -> MemberInvited:
    """A fresh invitation for a member still invited (the earlier token stops working).
    Admin or owners; the token is shown once, as on the first invitation."""
    redact_secrets(request, "invite_token")
    return service.reinvite(session, principal, member_id, _ttl(settings))


@router.post(
    "/members/{member_id}/keys",
    status_code=201,
    operation_id="create_personal_key",
    responses=problem_responses(Forbidden, NotFound, InvalidState),
)
def create_personal_key(
    member_id: str, principal: CurrentPrincipal, session: DB, request: Request
) -> PersonalKeyCreated:
    """A personal API key: it acts as the member, with the member's role (a viewer's
    key reads only), and stops when the member is disabled. Made by the member itself
    only, never by an owner or the admin for someone else. The key is in this response
    only (null in a replay)."""
    redact_secrets(request, "key")
    return service.create_personal_key(session, principal, member_id)


@public.post(
    "/invites/accept",
    operation_id="accept_invite",
    responses=add_problems(
        {},
        ValidationFailed,
        WeakPassword,
        InviteInvalid,
        InviteExpired,
        PayloadTooLarge,
        UnsupportedMediaType,
        DatabaseUnavailable,
    ),
)
def accept_invite(body: InviteAccept, session: DB, settings: AppSettings) -> MemberOut:
    """Accept an invitation: no API key, the token is the proof. The password must be
    at least 12 characters and not a common one (422 ``weak_password``). An unknown
    or already used token is 404 ``invite_invalid``, an expired one 410
    ``invite_expired``. No ``Idempotency-Key``: a repeated acceptance finds the token
    used (``invite_invalid``), and the person signs in with the password chosen."""
    return service.accept(session, passwords_for(settings), body)
