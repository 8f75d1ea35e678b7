"""Signing in and out, ``/v1/me``, and who may require TOTP of an account.

Sign-in looks the email up folded to lower case among *active* members. The same
email may be a member of several accounts: the password is tried against each (at
most :data:`MAX_ACCOUNTS`); when it opens one, that is the account; when it opens
several and no ``account_id`` was sent, 409 ``account_required`` lists those
accounts (the caller has shown the password, so they are no secret to it). A wrong
email and a wrong password get the same 401 ``invalid_credentials`` after the same
work (one Argon2id verification, a dummy one for an unknown email). A member with a
confirmed second factor also needs ``totp_code``: without it 401 ``totp_required``,
with a wrong or replayed one 401 ``invalid_credentials``. Every attempt is reserved
with the limiter (``limiter.py``) before anything is verified; wrong emails, passwords
and codes stay counted as failures, the rest are released.

The cookie's token is 256 random bits, stored as its SHA-256 only. Sign-in takes no
``Idempotency-Key`` (there is no account yet to keep it under, and a replay must never
hand out a session token again): every successful call makes a new session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from voucherledger.accounts import repository as accounts
from voucherledger.accounts.models import Account, Member
from voucherledger.accounts.service import to_out
from voucherledger.core.auth import Principal, hash_secret
from voucherledger.core.db import utcnow
from voucherledger.core.errors import AppError, Forbidden, NotFound
from voucherledger.core.ids import new_id
from voucherledger.core.settings import Settings
from voucherledger.people import repository as members_repository
from voucherledger.people import service as members
from voucherledger.people import session_repository as repository
from voucherledger.people import totp
from voucherledger.people.limiter import SigninLimiter
from voucherledger.people.passwords import Passwords
from voucherledger.people.schemas import MemberOut
from voucherledger.people.session_models import WebSession
from voucherledger.people.session_schemas import (
    CurrentSession,
    MeOut,
    SessionCreate,
    SessionCreated,
)

# The accounts one email is tried in at most (each costs an Argon2id verification).
MAX_ACCOUNTS = 10
MAX_USER_AGENT = 200
MAX_ADDRESS = 64


class InvalidCredentials(AppError):
    """Sign-in refused: unknown email, wrong password, a member not active, or a wrong
    or replayed TOTP code. One answer for all, so it reveals none of them."""

    status, code, title = 401, "invalid_credentials", "Invalid credentials"


class TotpRequired(AppError):
    """The password is right and the member has a confirmed second factor: send
    ``totp_code`` too."""

    status, code, title = 401, "totp_required", "TOTP code required"


class AccountRequired(AppError):
    """The email and password open members of several accounts: send ``account_id``
    (one of those listed in ``errors``)."""

    status, code, title = 409, "account_required", "Choose an account"


@dataclass(frozen=True, slots=True)
class SignIn:
    body: SessionCreated
    token: str  # the cookie's value: in the Set-Cookie header only


def member_out(member: Member) -> MemberOut:
    return members.to_out(member)


def sign_in(
    session: Session,
    body: SessionCreate,
    *,
    settings: Settings,
    passwords: Passwords,
    limiter: SigninLimiter,
    address: str | None,
    user_agent: str | None,
) -> SignIn:
    email_key = body.email.strip().lower()
    address = address[:MAX_ADDRESS] if address else None
    # Before ``session`` is touched: the reservation commits in transactions of its own.
    attempt = limiter.reserve(session, email_key, address)
    try:
        signed = _verified_sign_in(
            session,
            body,
            email_key,
            settings=settings,
            passwords=passwords,
            address=address,
            user_agent=user_agent,
        )
    except InvalidCredentials:
        raise  # a wrong email, password or code: the reserved row is the failure
    except BaseException:
        limiter.release_after(session, attempt)  # totp_required, account_required, ...
        raise
    limiter.succeed(session, attempt)
    return signed


def _verified_sign_in(
    session: Session,
    body: SessionCreate,
    email_key: str,
    *,
    settings: Settings,
    passwords: Passwords,
    address: str | None,
    user_agent: str | None,
) -> SignIn:
    candidates = repository.active_members_by_email(
        session, email_key, body.account_id, MAX_ACCOUNTS
    )
    matched = [m for m in candidates if passwords.verify(m.password_hash or "", body.password)]
    if not candidates:
        passwords.verify_dummy(body.password)
    if not matched:
        raise InvalidCredentials("The email or the password is wrong.")
    if len(matched) > 1:
        opened = [accounts.get(session, m.account_id) for m in matched]
        raise AccountRequired(
            "This email and password open several accounts: send account_id.",
            errors=[{"account_id": a.id, "name": a.name, "kind": a.kind} for a in opened if a],
        )
    member = matched[0]
    if member.totp_confirmed_at is not None:
        if body.totp_code is None:
            raise TotpRequired("Send totp_code: the current code of your authenticator.")
        if not totp.accept_code(session, member, body.totp_code):
            raise InvalidCredentials("The email or the password is wrong.")
    if member.password_hash is not None and passwords.needs_rehash(member.password_hash):
        member.password_hash = passwords.hash(body.password)
    now = utcnow()
    member.last_sign_in_at = now
    token = secrets.token_urlsafe(32)
    web_session = WebSession(
        id=new_id("ses"),
        member_id=member.id,
        account_id=member.account_id,
        token_hash=hash_secret(token),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
        client_address=address,
        user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
    )
    repository.add_session(session, web_session)
    account = accounts.get(session, member.account_id)
    if account is None:
        raise RuntimeError("a member without its account")
    created = SessionCreated(
        member=member_out(member),
        account=to_out(account, payout=True),  # the caller's own account
        csrf_token=web_session.csrf_token,
        expires_at=web_session.expires_at,
    )
    return SignIn(created, token)


def sign_out(session: Session, principal: Principal) -> None:
    if principal.session_id is None:
        raise NotFound("No current session: this request came with an API key.")
    repository.revoke_session(session, principal.session_id, utcnow())


def me(session: Session, principal: Principal) -> MeOut:
    account = accounts.get(session, principal.account_id)
    if account is None:
        raise NotFound(f"No account {principal.account_id}.")
    member = None
    if principal.member_id is not None:
        found = members_repository.get(session, principal.member_id)
        member = member_out(found) if found is not None else None
    current = None
    if principal.session_id is not None:
        web_session = repository.get_session(session, principal.session_id)
        if web_session is not None:
            current = CurrentSession(
                id=web_session.id,
                created_at=web_session.created_at,
                expires_at=web_session.expires_at,
                csrf_token=web_session.csrf_token,
            )
    return MeOut(**to_out(account, payout=True).model_dump(), member=member, session=current)


def set_security(
    session: Session, principal: Principal, account_id: str, require_totp: bool
) -> Account:
    """``require_totp`` of an account: by the admin, or an owner of that account."""
    if principal.kind != "admin" and principal.account_id != account_id:
        raise NotFound(f"No account {account_id}.")
    if not members.manages(principal, account_id):
        raise Forbidden("Only an owner of the account may change its security settings.")
    account = accounts.get(session, account_id, for_update=True)
    if account is None:
        raise NotFound(f"No account {account_id}.")
    account.require_totp = require_totp
    session.flush()
    return account
