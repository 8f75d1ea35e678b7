"""Members of accounts: invitations, their acceptance, changes, personal keys.

Who may do what (the admin's viewers, like every viewer, only read):

- An account's members are managed (invited, listed, read, changed, re-invited,
  given personal keys) by the admin and by the account's own active owners. Another
  member of the account gets 403; a caller from another account gets 404 for a member
  id, and for an account id whatever ``GET /v1/accounts/{id}`` would give it (404, or
  403 for a funder or manager, who see groups and suppliers in the directory).
- An account's own key (a machine, nobody) manages no members: inviting people is
  what lets someone approve, so it is left to people.
- Onboarding: a funder or manager may invite the first owner of a group or supplier
  account that has neither members nor API keys (nobody has taken it up yet).
- A member reads itself, and creates its own personal keys.
- An account's keys (its own and its members' personal ones) are listed for the
  same people who manage its members: the admin and the account's owners.

The last active owner of an account can be neither demoted nor disabled (409
``last_owner``): the account's active owner rows are locked before they are counted.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voucherledger.accounts import repository as accounts
from voucherledger.accounts import service as accounts_service
from voucherledger.accounts.models import Account, Member
from voucherledger.accounts.schemas import KeyOut
from voucherledger.core import events
from voucherledger.core.auth import Principal, hash_secret
from voucherledger.core.db import utcnow
from voucherledger.core.errors import (
    Forbidden,
    InvalidState,
    InviteExpired,
    InviteInvalid,
    LastOwner,
    MemberExists,
    NotFound,
)
from voucherledger.core.ids import new_id
from voucherledger.core.pagination import Page, make_page
from voucherledger.people import repository
from voucherledger.people.passwords import Passwords, check_password
from voucherledger.people.schemas import (
    InviteAccept,
    MemberCreate,
    MemberInvited,
    MemberOut,
    MemberUpdate,
    PersonalKeyCreated,
)

INVITE_PREFIX = "vlinv_"
ONBOARDERS = frozenset({"funder", "manager"})
ONBOARDED = frozenset({"group", "supplier"})


def to_out(member: Member) -> MemberOut:
    return MemberOut(
        id=member.id,
        account_id=member.account_id,
        email=member.email,
        name=member.name,
        role=member.role,
        status=member.status,
        created_at=member.created_at,
        created_by=member.created_by,
        last_sign_in_at=member.last_sign_in_at,
        totp_enabled=member.totp_confirmed_at is not None,
    )


def _emit(session: Session, type_: str, member: Member) -> None:
    """A member's event, for the member's account, in the caller's transaction (never
    an invitation token: the object is the plain MemberOut)."""
    events.emit(
        session,
        type_,
        {"object": to_out(member).model_dump(mode="json")},
        account_ids=[member.account_id],
    )


def _invited(member: Member, token: str) -> MemberInvited:
    if member.invite_expires_at is None:
        raise RuntimeError("an invitation without an expiry")
    return MemberInvited(
        **to_out(member).model_dump(),
        invite_token=token,
        invite_expires_at=member.invite_expires_at,
    )


def _new_invite(member: Member, ttl: timedelta) -> str:
    """A fresh token (256 random bits) for ``member``; only its SHA-256 is kept."""
    token = INVITE_PREFIX + secrets.token_urlsafe(32)
    member.invite_token_hash = hash_secret(token)
    member.invite_expires_at = utcnow() + ttl
    return token


# --- who may ------------------------------------------------------------------------


def manages(principal: Principal, account_id: str) -> bool:
    """The admin (its own key, or an owner of it), or an owner of the account."""
    return principal.is_admin or (
        principal.account_id == account_id and principal.has_member_role("owner")
    )


def _account_to_manage(session: Session, principal: Principal, account_id: str) -> Account:
    """The account if the caller manages its members; 404 for an account the caller may
    not see at all, 403 for one it may."""
    accounts_service.get(session, principal, account_id)  # 404 unless visible
    account = accounts.get(session, account_id)
    if account is None:
        raise NotFound(f"No account {account_id}.")
    if not manages(principal, account_id):
        raise Forbidden("Only the account's owners (and the admin) manage its members.")
    return account


def _member_in_reach(
    session: Session, principal: Principal, member_id: str, *, for_update: bool = False
) -> Member:
    """The member if it is in the caller's account (any account for the admin); 404
    otherwise, exactly as an unknown id."""
    member = repository.get(session, member_id, for_update=for_update)
    if member is None or (principal.kind != "admin" and member.account_id != principal.account_id):
        raise NotFound(f"No member {member_id}.")
    return member


def _require_manager(principal: Principal, member: Member) -> None:
    if not manages(principal, member.account_id):
        raise Forbidden("Only the account's owners (and the admin) manage its members.")


def _may_onboard(session: Session, principal: Principal, account_id: str, role: str) -> bool:
    """A funder or manager inviting the first owner of a group or supplier that it
    created and nobody has taken up yet. Forbidden (with the reason) when it is such a
    caller and account but not such an invitation; False when the rule is not about
    this caller at all."""
    account = accounts.get(session, account_id)
    if account is None or principal.kind not in ONBOARDERS or account.kind not in ONBOARDED:
        return False
    if not repository.acts_for(session, account.created_by, principal.account_id):
        raise Forbidden("A funder or manager onboards only the accounts it created.")
    if repository.has_members(session, account_id) or repository.has_keys(session, account_id):
        raise Forbidden("This account has been taken up already; its owners invite its members.")
    if role != "owner":
        raise Forbidden("A funder or manager invites only the first owner of a group or supplier.")
    return True


# --- operations ---------------------------------------------------------------------


def invite(
    session: Session,
    principal: Principal,
    account_id: str,
    data: MemberCreate,
    ttl: timedelta,
) -> MemberInvited:
    try:
        _account_to_manage(session, principal, account_id)
    except Forbidden:
        if not _may_onboard(session, principal, account_id, data.role):
            raise
    email_key = data.email.lower()
    if repository.email_taken(session, account_id, email_key):
        raise MemberExists(f"The account has a member with the email {data.email} already.")
    member = Member(
        id=new_id("mem"),
        account_id=account_id,
        email=data.email,
        email_key=email_key,
        name=data.name,
        role=data.role,
        status="invited",
        created_at=utcnow(),
        created_by=principal.actor_ref,
    )
    token = _new_invite(member, ttl)
    try:
        with session.begin_nested():  # a concurrent invitation of the same address
            repository.add(session, member)
    except IntegrityError as exc:
        raise MemberExists(
            f"The account has a member with the email {data.email} already."
        ) from exc
    _emit(session, "member.invited", member)
    return _invited(member, token)


def list_members(
    session: Session, principal: Principal, account_id: str, after: str | None, limit: int
) -> Page[MemberOut]:
    _account_to_manage(session, principal, account_id)
    rows = repository.list_for_account(session, account_id, after=after, limit=limit + 1)
    return make_page([to_out(m) for m in rows], limit)


def list_keys(
    session: Session, principal: Principal, account_id: str, after: str | None, limit: int
) -> Page[KeyOut]:
    """The account's API keys, revoked ones included; never a secret or its hash."""
    _account_to_manage(session, principal, account_id)
    rows = accounts.list_keys(session, account_id, after=after, limit=limit + 1)
    return make_page([accounts_service.key_out(k) for k in rows], limit)


def get(session: Session, principal: Principal, member_id: str) -> MemberOut:
    member = _member_in_reach(session, principal, member_id)
    if principal.member_id != member.id:
        _require_manager(principal, member)
    return to_out(member)


def update(session: Session, principal: Principal, member_id: str, data: MemberUpdate) -> MemberOut:
    member = _member_in_reach(session, principal, member_id)
    _require_manager(principal, member)
    # An active owner's change is decided under the locks of all the account's active
    # owners, taken in id order (this member's among them); then the member is read
    # again, as it stands once the locks are held.
    owners = None
    if _active_owner(member):
        owners = repository.lock_active_owners(session, member.account_id)
    member = _member_in_reach(session, principal, member_id, for_update=True)
    if data.status is not None and data.status != member.status and member.status == "invited":
        raise InvalidState(
            "An invited member becomes active by accepting its invitation, and has "
            "nothing to disable yet."
        )
    role = data.role or member.role
    status = data.status or member.status
    if _active_owner(member) and (role, status) != ("owner", "active"):
        if owners is None:  # it became an owner since the first read
            owners = repository.lock_active_owners(session, member.account_id)
        if owners == [member.id]:
            raise LastOwner(
                "This is the account's last active owner: make another member an owner first."
            )
    if data.name is not None:
        member.name = data.name
    if status == "disabled" and member.status != "disabled":
        # Revoked, not suspended: enabling the member again brings back no key and no
        # session that might have leaked; the person signs in again.
        repository.revoke_credentials(session, member.id, utcnow(), principal.actor_ref)
    was = member.status
    member.role = role
    member.status = status
    session.flush()
    if status != was and status in ("disabled", "active"):
        _emit(session, "member.disabled" if status == "disabled" else "member.activated", member)
    return to_out(member)


def _active_owner(member: Member) -> bool:
    return member.role == "owner" and member.status == "active"


def reinvite(
    session: Session, principal: Principal, member_id: str, ttl: timedelta
) -> MemberInvited:
    """A fresh token for an invited member; the one sent before stops working."""
    member = _member_in_reach(session, principal, member_id, for_update=True)
    _require_manager(principal, member)
    if member.status != "invited":
        raise InvalidState("The member has accepted its invitation already.")
    token = _new_invite(member, ttl)
    session.flush()
    return _invited(member, token)


def accept(session: Session, passwords: Passwords, data: InviteAccept) -> MemberOut:
    """The invited person chooses a password and becomes an active member. The token
    is cleared: a second use is ``invite_invalid``, as an unknown token is."""
    member = repository.get_by_invite(session, hash_secret(data.token))
    if member is None or member.status != "invited":
        raise InviteInvalid("No open invitation has this token.")
    expires = member.invite_expires_at
    if expires is None or expires <= utcnow():
        raise InviteExpired(
            "The invitation has expired; ask an owner of the account for a new one."
        )
    check_password(data.password)
    member.password_hash = passwords.hash(data.password)
    member.status = "active"
    member.invite_token_hash = None
    member.invite_expires_at = None
    session.flush()
    _emit(session, "member.activated", member)
    return to_out(member)


def create_personal_key(
    session: Session, principal: Principal, member_id: str
) -> PersonalKeyCreated:
    """A key that acts as the member, made by the member itself (signed in, or with a
    personal key it made before). Nobody else may make one: a key made by an owner or
    the admin would let its maker act, and approve payouts, as this person."""
    member = _member_in_reach(session, principal, member_id)
    if principal.member_id != member.id:
        raise Forbidden("A personal key is made by its own person only.")
    if member.status != "active":
        raise InvalidState(f"The member is {member.status}: only an active member has keys.")
    key, plaintext = accounts_service.issue_key(
        session, member.account_id, created_by=principal.actor_ref, member_id=member.id
    )
    return PersonalKeyCreated(
        id=key.id,
        account_id=key.account_id,
        member_id=member.id,
        key=plaintext,
        created_at=key.created_at,
        created_by=key.created_by,
    )
