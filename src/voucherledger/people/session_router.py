"""``/v1/sessions`` (sign-in and sign-out), ``/v1/me`` and its TOTP, and
``/v1/accounts/{id}/security``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from voucherledger.accounts.schemas import AccountOut
from voucherledger.accounts.service import to_out
from voucherledger.core.auth import SESSION_COOKIE, CurrentPrincipal
from voucherledger.core.errors import (
    CsrfFailed,
    Forbidden,
    InvalidState,
    NotFound,
    RateLimited,
    TotpSetupRequired,
    problem_responses,
)
from voucherledger.core.idempotency import redact_secrets
from voucherledger.core.routing import CommittingRoute, UnauthenticatedRoute
from voucherledger.core.session import get_session
from voucherledger.core.settings import Settings
from voucherledger.people import sessions, totp
from voucherledger.people.limiter import SigninLimiter
from voucherledger.people.passwords import passwords_for
from voucherledger.people.session_schemas import (
    MeOut,
    SecurityUpdate,
    SessionCreate,
    SessionCreated,
    TotpConfirm,
    TotpConfirmed,
    TotpSetup,
)

public = APIRouter(prefix="/v1", tags=["sessions"], route_class=UnauthenticatedRoute)
router = APIRouter(prefix="/v1", tags=["sessions"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
# What every request authenticated by a session may also be refused with.
SESSION_REFUSALS = (CsrfFailed, TotpSetupRequired)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _limiter(request: Request) -> SigninLimiter:
    limiter: SigninLimiter = request.app.state.signin_limiter
    return limiter


@public.post(
    "/sessions",
    status_code=201,
    operation_id="create_session",
    responses=problem_responses(
        sessions.InvalidCredentials,
        sessions.TotpRequired,
        sessions.AccountRequired,
        RateLimited,
    ),
)
def create_session(
    body: SessionCreate, request: Request, response: Response, session: DB
) -> SessionCreated:
    """Sign in: sets the cookie `vl_session` (HttpOnly, SameSite=Lax, Path=/, Secure
    unless `session_cookie_secure` is off) and returns the `csrf_token` to send as
    `X-CSRF-Token` with every state-changing request. Takes no `Idempotency-Key`: each
    call is a new session. 401 `invalid_credentials` whatever was wrong (email,
    password, TOTP code); 429 `rate_limited` after too many failures."""
    settings = _settings(request)
    done = sessions.sign_in(
        session,
        body,
        settings=settings,
        passwords=passwords_for(settings),
        limiter=_limiter(request),
        address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    response.set_cookie(
        SESSION_COOKIE,
        done.token,
        max_age=settings.session_absolute_hours * 3600,
        path="/",
        secure=settings.session_cookie_secure,
        httponly=True,
        samesite="lax",
    )
    response.headers["Cache-Control"] = "no-store"
    return done.body


@router.delete(
    "/sessions/current",
    status_code=204,
    operation_id="delete_current_session",
    responses=problem_responses(NotFound, *SESSION_REFUSALS, validation=False),
)
def delete_current_session(principal: CurrentPrincipal, request: Request, session: DB) -> Response:
    """Sign out: the session stops working at once, and the cookie is cleared. 404
    for a request made with an API key."""
    sessions.sign_out(session, principal)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=_settings(request).session_cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/me",
    operation_id="get_me",
    responses=problem_responses(TotpSetupRequired, validation=False),
)
def get_me(principal: CurrentPrincipal, session: DB) -> MeOut:
    """The caller's account (as before), with the member signed in as (a session or a
    personal key; null for an account's key) and the session, if any."""
    return sessions.me(session, principal)


@router.post(
    "/me/totp",
    status_code=201,
    operation_id="begin_totp_setup",
    responses=problem_responses(Forbidden, InvalidState, *SESSION_REFUSALS),
)
def begin_totp_setup(principal: CurrentPrincipal, request: Request, session: DB) -> TotpSetup:
    """A new TOTP secret for the member (issuer `voucherledger`), unconfirmed until
    `POST /v1/me/totp/confirm`. 409 once a second factor is confirmed. The secret is in
    this response only (a replay with the same Idempotency-Key returns nulls)."""
    redact_secrets(request, "secret", "otpauth_uri", "qr_svg")
    return totp.begin_setup(session, principal)


@router.post(
    "/me/totp/confirm",
    operation_id="confirm_totp",
    responses=problem_responses(Forbidden, InvalidState, totp.InvalidTotpCode, *SESSION_REFUSALS),
)
def confirm_totp(body: TotpConfirm, principal: CurrentPrincipal, session: DB) -> TotpConfirmed:
    """Confirm the second factor with a current code; from then on sign-in needs one."""
    return totp.confirm(session, principal, body.code)


@router.patch(
    "/accounts/{account_id}/security",
    operation_id="update_account_security",
    responses=problem_responses(Forbidden, NotFound, *SESSION_REFUSALS),
)
def update_account_security(
    account_id: str, body: SecurityUpdate, principal: CurrentPrincipal, session: DB
) -> AccountOut:
    """`require_totp`: every member must confirm a TOTP second factor; until they do,
    their sessions may only set it up (403 `totp_setup_required` elsewhere). Admin, or
    an owner of the account."""
    # The admin or an owner of the account: both may see its payout details.
    return to_out(
        sessions.set_security(session, principal, account_id, body.require_totp), payout=True
    )
