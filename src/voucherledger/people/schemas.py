"""Bodies of the member, invitation and personal-key endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from voucherledger.accounts.schemas import Name
from voucherledger.core.auth import MemberRole
from voucherledger.core.schemas import Email, InputSchema, Schema, SingleLine

# Set through PATCH: an invited member becomes active by accepting its invitation.
SettableStatus = Literal["active", "disabled"]


class MemberCreate(InputSchema):
    email: Email
    name: Name
    role: MemberRole


class MemberUpdate(InputSchema):
    """What an owner may change; a field left out stays as it is."""

    name: Name | None = None
    role: MemberRole | None = None
    status: SettableStatus | None = None


class InviteAccept(InputSchema):
    # Not stripped or otherwise changed: the password is used exactly as sent.
    token: Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=200)]
    password: Annotated[
        str, StringConstraints(min_length=1, max_length=4096, strip_whitespace=False)
    ]


class MemberOut(Schema):
    id: str
    account_id: str
    email: str
    name: str
    role: str
    status: str
    created_at: datetime
    created_by: str | None = Field(
        description="Who invited the person: a member id or an account key id."
    )
    last_sign_in_at: datetime | None
    totp_enabled: bool = Field(description="A TOTP second factor is confirmed.")


class MemberInvited(MemberOut):
    invite_token: str | None = Field(
        description="The invitation: the person accepts it with POST /v1/invites/accept. "
        "Shown only in this response, pass it on now; null when the response is an "
        "idempotent replay."
    )
    invite_expires_at: datetime


class PersonalKeyCreated(Schema):
    id: str
    account_id: str
    member_id: str
    key: str | None = Field(
        description="The API key; it acts as the member, with the member's role. Shown "
        "only in this response, store it now; null when the response is an idempotent "
        "replay."
    )
    created_at: datetime
    created_by: str | None = Field(description="Who made the key: the member itself.")
