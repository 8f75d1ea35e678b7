"""Webhook endpoints: an account registers URLs to receive its events, signed.

Every kind of account may own endpoints; an endpoint is its owner's alone (another
account's id answers 404, as an unknown one). An endpoint reads the owner's event
feed from the moment it is created (``cursor`` starts at the last sequence handed
out). Its ``secret`` is shown only when created and when rotated; after a rotation
the previous secret keeps signing, beside the new one, for :data:`ROTATION_OVERLAP`.
Deleting is soft (``deleted_at``): nothing more is delivered, and the id answers 404.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from voucherledger.core import events
from voucherledger.core.auth import Principal
from voucherledger.core.db import utcnow
from voucherledger.core.errors import (
    DeliveryInFlight,
    NotFound,
    RotationInProgress,
    ValidationFailed,
)
from voucherledger.core.ids import new_id
from voucherledger.core.pagination import Page, PageParams, split_page
from voucherledger.webhooks import repository, urls
from voucherledger.webhooks.models import WebhookDelivery, WebhookEndpoint
from voucherledger.webhooks.schemas import (
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)

ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    """``whsec_`` and base64 of 24 random bytes, the form Standard Webhooks reads."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _event_types(types: list[str]) -> list[str]:
    if types == ["*"]:
        return types
    unknown = [t for t in types if t not in events.EVENT_TYPES]
    if unknown or "*" in types:
        message = f'Unknown event type(s): {", ".join(unknown) or "*"} (["*"] alone means all).'
        raise ValidationFailed(
            message, [{"loc": ["body", "event_types"], "msg": message, "type": "event_type"}]
        )
    return sorted(set(types))


def endpoint_out(endpoint: WebhookEndpoint) -> WebhookEndpointOut:
    return WebhookEndpointOut.model_validate(endpoint)


def _with_secret(endpoint: WebhookEndpoint) -> WebhookEndpointWithSecret:
    return WebhookEndpointWithSecret.model_validate(endpoint)


def owned(session: Session, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
    endpoint = repository.get_endpoint(session, endpoint_id)
    if (
        endpoint is None
        or endpoint.deleted_at is not None
        or (endpoint.account_id != principal.account_id)
    ):
        raise NotFound("No such webhook endpoint.")
    return endpoint


def create(
    session: Session, principal: Principal, body: WebhookEndpointCreate, *, allow_insecure: bool
) -> WebhookEndpointWithSecret:
    urls.check(body.url, allow_insecure=allow_insecure)
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        account_id=principal.account_id,
        url=body.url,
        description=body.description,
        event_types=_event_types(body.event_types),
        enabled=True,
        secret=new_secret(),
        previous_secret=None,
        previous_secret_expires_at=None,
        cursor=events.last_sequence(session),
        failing_since=None,
        disabled_reason=None,
        created_at=now,
        created_by=principal.actor_ref,
        updated_at=now,
        deleted_at=None,
    )
    session.add(endpoint)
    session.flush()
    return _with_secret(endpoint)


def list_endpoints(
    session: Session, principal: Principal, page: PageParams
) -> Page[WebhookEndpointOut]:
    rows = repository.endpoints_of(session, principal.account_id, page.after, page.limit + 1)
    data, cursor = split_page(rows, page.limit)
    return Page(data=[endpoint_out(e) for e in data], next_cursor=cursor)


def update(
    session: Session,
    principal: Principal,
    endpoint_id: str,
    body: WebhookEndpointUpdate,
    *,
    allow_insecure: bool,
) -> WebhookEndpointOut:
    endpoint = owned(session, principal, endpoint_id)
    fields = body.model_fields_set
    if "url" in fields and body.url is not None:
        urls.check(body.url, allow_insecure=allow_insecure)
        endpoint.url = body.url
    if "event_types" in fields and body.event_types is not None:
        endpoint.event_types = _event_types(body.event_types)
    if "description" in fields:
        endpoint.description = body.description
    if "enabled" in fields and body.enabled is not None:
        if body.enabled and not endpoint.enabled:
            endpoint.failing_since = None
            endpoint.disabled_reason = None
        endpoint.enabled = body.enabled
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint_out(endpoint)


def delete(session: Session, principal: Principal, endpoint_id: str) -> None:
    endpoint = owned(session, principal, endpoint_id)
    endpoint.deleted_at = endpoint.updated_at = utcnow()
    endpoint.enabled = False
    session.flush()


def rotate_secret(
    session: Session, principal: Principal, endpoint_id: str, *, now: datetime | None = None
) -> WebhookEndpointWithSecret:
    endpoint = owned(session, principal, endpoint_id)
    now = now or utcnow()
    overlap_ends = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and overlap_ends is not None and now < overlap_ends:
        # A second rotation would drop the secret receivers may still verify with.
        raise RotationInProgress(
            "The previous secret still signs until "
            f"{overlap_ends.isoformat(timespec='seconds')}; rotate again after that."
        )
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    session.flush()
    return _with_secret(endpoint)


def list_deliveries(
    session: Session,
    principal: Principal,
    endpoint_id: str,
    status: str | None,
    page: PageParams,
) -> Page[WebhookDeliveryOut]:
    endpoint = owned(session, principal, endpoint_id)
    rows = repository.deliveries_of(session, endpoint.id, status, page.after, page.limit + 1)
    data, cursor = split_page(rows, page.limit)
    return Page(data=[WebhookDeliveryOut.model_validate(d) for d in data], next_cursor=cursor)


def retry(
    session: Session, principal: Principal, endpoint_id: str, delivery_id: str
) -> WebhookDeliveryOut:
    """Make a delivery pending and due now, whatever its state (a failed one gets one
    more attempt; it fails again at once if that attempt fails too). Refused while a
    worker is sending it: making it due then would let a second worker send it at
    the same time."""
    endpoint = owned(session, principal, endpoint_id)
    delivery: WebhookDelivery | None = repository.get_delivery(
        session, endpoint.id, delivery_id, for_update=True
    )
    if delivery is None:
        raise NotFound("No such delivery.")
    now = utcnow()
    if delivery.leased_until is not None and delivery.leased_until > now:
        raise DeliveryInFlight("A worker is sending this delivery now; retry once it is recorded.")
    delivery.status = "pending"
    delivery.next_attempt_at = now
    session.flush()
    return WebhookDeliveryOut.model_validate(delivery)
