"""TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps).

``POST /v1/me/totp`` gives a member a new secret, unconfirmed; ``POST
/v1/me/totp/confirm`` with a code from it confirms it, and from then on sign-in
needs a code. A code is accepted in its own step and the one before (a clock a little
behind, a code typed just as it changed); the step of the code accepted is stored
(``members.totp_last_step``) and no code of that step or an earlier one is accepted
again, so a code seen once — over a shoulder, in a log — cannot be replayed.
Recording the step is a guarded UPDATE, so two concurrent sign-ins with one code
cannot both pass.
"""

from __future__ import annotations

import hmac
import io

import pyotp
import segno
from sqlalchemy.orm import Session

from voucherledger.accounts.models import Member
from voucherledger.core.auth import Principal
from voucherledger.core.db import utcnow
from voucherledger.core.errors import AppError, Forbidden, InvalidState, NotFound
from voucherledger.people import repository as members
from voucherledger.people import session_repository as repository
from voucherledger.people.session_schemas import TotpConfirmed, TotpSetup

ISSUER = "voucherledger"
STEP_SECONDS = 30


class InvalidTotpCode(AppError):
    """The code given to confirm a TOTP setup is not the current one."""

    status, code, title = 422, "invalid_totp_code", "Invalid TOTP code"


def has_confirmed_totp(session: Session, member_id: str) -> bool:
    """Whether the member has a confirmed TOTP second factor (for rules such as "an
    approver of a funder must have TOTP before approving")."""
    member = members.get(session, member_id)
    return member is not None and member.totp_confirmed_at is not None


def current_step() -> int:
    return int(utcnow().timestamp()) // STEP_SECONDS


def accept_code(session: Session, member: Member, code: str) -> bool:
    """True, and the code's step recorded, when ``code`` is the member's code of the
    current or the previous step and no code of that step or later was used."""
    if member.totp_secret is None:
        return False
    code = code.replace(" ", "")
    totp = pyotp.TOTP(member.totp_secret, interval=STEP_SECONDS)
    now = current_step()
    last = member.totp_last_step
    for step in (now, now - 1):
        if last is not None and step <= last:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS).encode(), code.encode()):
            return repository.use_totp_step(session, member.id, step)
    return False


def _member(session: Session, principal: Principal) -> Member:
    if principal.member_id is None:
        raise Forbidden("A second factor belongs to a person: use a session or a personal key.")
    member = members.get(session, principal.member_id, for_update=True)
    if member is None:
        raise NotFound(f"No member {principal.member_id}.")
    return member


def begin_setup(session: Session, principal: Principal) -> TotpSetup:
    """A new secret for the caller, unconfirmed (it replaces one not yet confirmed)."""
    member = _member(session, principal)
    if member.totp_confirmed_at is not None:
        raise InvalidState("A second factor is confirmed already.")
    secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
    member.totp_secret = secret
    member.totp_last_step = None
    session.flush()
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=member.email, issuer_name=ISSUER
    )
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, border=2, xmldecl=False)
    return TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=buffer.getvalue().decode("utf-8"))


def confirm(session: Session, principal: Principal, code: str) -> TotpConfirmed:
    member = _member(session, principal)
    if member.totp_confirmed_at is not None:
        raise InvalidState("A second factor is confirmed already.")
    if member.totp_secret is None:
        raise InvalidState("Set up a second factor first (POST /v1/me/totp).")
    if not accept_code(session, member, code):
        raise InvalidTotpCode(
            "The code is not the current one of the secret set up; try the next one."
        )
    now = utcnow()
    member.totp_confirmed_at = now
    session.flush()
    return TotpConfirmed(member_id=member.id, totp_confirmed_at=now)
