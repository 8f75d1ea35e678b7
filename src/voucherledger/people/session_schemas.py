"""Bodies of sign-in, ``/v1/me`` and the TOTP endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictBool, StringConstraints

from voucherledger.accounts.schemas import AccountOut
from voucherledger.core.schemas import InputSchema, Schema, SingleLine
from voucherledger.people.schemas import MemberOut

Email = Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=254)]
# Not stripped or checked for strength here: any string up to the longest password
# that can be set is tried, so a refused sign-in says nothing about the rules.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024, strip_whitespace=False)]
Code = Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=16)]


class SessionCreate(InputSchema):
    email: Email
    password: Password
    totp_code: Code | None = Field(
        default=None, description="The current 6-digit code, once TOTP is confirmed."
    )
    account_id: Annotated[str, SingleLine, StringConstraints(max_length=40)] | None = Field(
        default=None,
        description="The account to sign in to, when the email is a member of several "
        "(else 409 account_required lists those the password opens).",
    )


class SessionCreated(Schema):
    member: MemberOut
    account: AccountOut
    csrf_token: str = Field(
        description="Send it as the X-CSRF-Token header with every state-changing request "
        "made with the session cookie."
    )
    expires_at: datetime = Field(description="The absolute end of the session.")


class CurrentSession(Schema):
    id: str
    created_at: datetime
    expires_at: datetime
    csrf_token: str


class MeOut(AccountOut):
    """The caller's account (its fields at the top level, as before), and the person."""

    member: MemberOut | None = Field(
        description="The person, when signed in as one (a session or a personal key); "
        "null for an account's own key."
    )
    session: CurrentSession | None = Field(
        description="The browser session of this request, with its csrf_token (for a "
        "console after a page reload); null for an API key."
    )


class TotpSetup(Schema):
    secret: str | None = Field(description="Base32; null in an idempotent replay.")
    otpauth_uri: str | None = Field(description="For an authenticator app; null in a replay.")
    qr_svg: str | None = Field(description="The otpauth URI as a QR code; null in a replay.")


class TotpConfirm(InputSchema):
    code: Code


class TotpConfirmed(Schema):
    member_id: str
    totp_confirmed_at: datetime


class SecurityUpdate(InputSchema):
    require_totp: StrictBool
