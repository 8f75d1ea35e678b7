"""``/v1/webhook-endpoints``: an account's webhook endpoints and their deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from voucherledger.accounts.models import ACCOUNT_KINDS
from voucherledger.core.auth import CurrentPrincipal, Principal, require_roles
from voucherledger.core.errors import (
    DeliveryInFlight,
    Forbidden,
    NotFound,
    RotationInProgress,
    WebhookUrlInsecure,
    WebhookUrlInvalid,
    WebhookUrlNotPublic,
    problem_responses,
)
from voucherledger.core.idempotency import redact_secrets
from voucherledger.core.pagination import Page, PageParams, page_params
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.session import get_session
from voucherledger.webhooks import service
from voucherledger.webhooks.models import DeliveryStatus
from voucherledger.webhooks.schemas import (
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"], route_class=CommittingRoute)

DB = Annotated[Session, Depends(get_session)]
Paging = Annotated[PageParams, Depends(page_params)]
ANY_KIND = ACCOUNT_KINDS
Owner = Annotated[Principal, Depends(require_roles(*ANY_KIND))]
URL_ERRORS = (WebhookUrlInvalid, WebhookUrlInsecure, WebhookUrlNotPublic)


def _insecure(request: Request) -> bool:
    return bool(request.app.state.settings.webhook_allow_insecure_urls)


@router.post(
    "",
    status_code=201,
    operation_id="create_webhook_endpoint",
    responses=problem_responses(Forbidden, *URL_ERRORS),
)
def create_webhook_endpoint(
    body: WebhookEndpointCreate, principal: Owner, session: DB, request: Request
) -> WebhookEndpointWithSecret:
    """Register a URL for the account's events (those after now). The answer holds the
    signing ``secret``, shown this once: a replay of the request (same
    ``Idempotency-Key``) returns the same endpoint with ``secret`` null."""
    redact_secrets(request, "secret")
    return service.create(session, principal, body, allow_insecure=_insecure(request))


@router.get("", operation_id="list_webhook_endpoints", responses=problem_responses())
def list_webhook_endpoints(
    principal: CurrentPrincipal, session: DB, page: Paging
) -> Page[WebhookEndpointOut]:
    return service.list_endpoints(session, principal, page)


@router.get(
    "/{endpoint_id}", operation_id="get_webhook_endpoint", responses=problem_responses(NotFound)
)
def get_webhook_endpoint(
    endpoint_id: str, principal: CurrentPrincipal, session: DB
) -> WebhookEndpointOut:
    return service.endpoint_out(service.owned(session, principal, endpoint_id))


@router.patch(
    "/{endpoint_id}",
    operation_id="update_webhook_endpoint",
    responses=problem_responses(Forbidden, NotFound, *URL_ERRORS),
)
def update_webhook_endpoint(
    endpoint_id: str,
    body: WebhookEndpointUpdate,
    principal: Owner,
    session: DB,
    request: Request,
) -> WebhookEndpointOut:
    """Change the URL, the event types, the description, or ``enabled`` (re-enabling
    clears ``failing_since`` and ``disabled_reason``)."""
    return service.update(session, principal, endpoint_id, body, allow_insecure=_insecure(request))


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    operation_id="delete_webhook_endpoint",
    responses=problem_responses(Forbidden, NotFound),
)
def delete_webhook_endpoint(endpoint_id: str, principal: Owner, session: DB) -> Response:
    """Nothing more is delivered to it; its id then answers 404."""
    service.delete(session, principal, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    operation_id="rotate_webhook_endpoint_secret",
    responses=problem_responses(Forbidden, NotFound, RotationInProgress),
)
def rotate_webhook_endpoint_secret(
    endpoint_id: str, principal: Owner, session: DB, request: Request
) -> WebhookEndpointWithSecret:
    """A new secret; the old one keeps signing too (a second signature in
    ``webhook-signature``) for 24 hours, during which another rotation is refused
    (``rotation_in_progress``). The new secret is in this response only: a replay
    returns ``secret`` null."""
    redact_secrets(request, "secret")
    return service.rotate_secret(session, principal, endpoint_id)


@router.get(
    "/{endpoint_id}/deliveries",
    operation_id="list_webhook_deliveries",
    responses=problem_responses(NotFound),
)
def list_webhook_deliveries(
    endpoint_id: str,
    principal: CurrentPrincipal,
    session: DB,
    page: Paging,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> Page[WebhookDeliveryOut]:
    return service.list_deliveries(session, principal, endpoint_id, status, page)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/retry",
    operation_id="retry_webhook_delivery",
    responses=problem_responses(Forbidden, NotFound, DeliveryInFlight),
)
def retry_webhook_delivery(
    endpoint_id: str, delivery_id: str, principal: Owner, session: DB
) -> WebhookDeliveryOut:
    """Pending again and due now, also after it failed; refused with
    ``delivery_in_flight`` while a worker is sending it."""
    return service.retry(session, principal, endpoint_id, delivery_id)
