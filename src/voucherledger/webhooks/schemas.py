"""Bodies of the webhook endpoint and delivery endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from voucherledger.core.schemas import CREATED_BY, FreeText, InputSchema, Schema, SingleLine
from voucherledger.webhooks.models import DeliveryStatus

Url = Annotated[str, SingleLine, StringConstraints(min_length=1, max_length=4000)]
Description = Annotated[str, FreeText, StringConstraints(max_length=500)]
EventTypes = Annotated[
    list[Annotated[str, StringConstraints(max_length=60)]],
    Field(
        min_length=1,
        max_length=50,
        description='Event types to deliver (see GET /v1/events), or ["*"] for all.',
    ),
]


class WebhookEndpointCreate(InputSchema):
    url: Url = Field(
        description="https, resolving only to public addresses; at most 2000 characters."
    )
    event_types: EventTypes
    description: Description | None = None


class WebhookEndpointUpdate(InputSchema):
    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = Field(
        default=None, description="true re-enables a disabled endpoint (clearing its reason)."
    )


class WebhookEndpointOut(Schema):
    id: str
    account_id: str
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    failing_since: datetime | None = Field(
        description="Since when every attempt has failed; null after a success."
    )
    disabled_reason: str | None
    created_at: datetime
    created_by: str | None = Field(description=CREATED_BY)
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpointOut):
    secret: str | None = Field(
        description="whsec_ + base64 of 24 random bytes: the Standard Webhooks signing "
        "secret. Shown only here (and when rotated), store it now; null when the response "
        "is an idempotent replay."
    )


class WebhookDeliveryOut(Schema):
    id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_duration_ms: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
