"""SQL of webhook endpoints, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from voucherledger.core.pagination import keyset
from voucherledger.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def get_endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint | None:
    return session.get(WebhookEndpoint, endpoint_id)


def endpoints_of(
    session: Session, account_id: str, after: str | None, limit: int
) -> list[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.account_id == account_id, WebhookEndpoint.deleted_at.is_(None)
    )
    return keyset(session, stmt, WebhookEndpoint.id, after, limit)


def deliveries_of(
    session: Session, endpoint_id: str, status: str | None, after: str | None, limit: int
) -> list[WebhookDelivery]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return keyset(session, stmt, WebhookDelivery.id, after, limit)


def get_delivery(
    session: Session, endpoint_id: str, delivery_id: str, *, for_update: bool = False
) -> WebhookDelivery | None:
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=for_update)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        return None
    return delivery


def purge_deliveries(session: Session, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` deliveries created before ``before``, with their
    attempts; returns how many. The sweep calls it in batches."""
    ids = list(
        session.execute(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.created_at < before)
            .order_by(WebhookDelivery.created_at)
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return 0
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return len(ids)
