"""``/healthz``, ``/readyz`` and ``/metrics``.

``/metrics`` is open unless ``VOUCHERLEDGER_METRICS_TOKEN`` is set; then it answers
only ``Authorization: Bearer <token>``. Each scrape reads the seal backlog (queue
depth, age of the oldest unsealed transaction) from the database.
"""

from __future__ import annotations

import hmac
import math

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from voucherledger.core.db import utcnow
from voucherledger.core.errors import Unauthenticated, problem_responses
from voucherledger.core.observability import SEAL_LAG, SEAL_QUEUE_DEPTH, metrics_response
from voucherledger.ledger.sealer import backlog
from voucherledger.ops.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _readiness(engine: Engine) -> tuple[bool, dict[str, str | None]]:
    head = head_revision()
    for attempt in (1, 2):
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            current = current_revision(engine)
            break
        except SQLAlchemyError as exc:
            # Pooled connections are not pinged when taken: the first use of one the
            # server closed (a restart) fails and renews the pool; ask once more.
            if attempt == 1 and isinstance(exc, DBAPIError) and exc.connection_invalidated:
                continue
            return False, {
                "database": f"unreachable: {type(exc).__name__}",
                "migration": None,
                "head": head,
            }
    ready = current == head
    return ready, {"database": "ok", "migration": current, "head": head}


@router.get("/readyz", operation_id="readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the migrations' head (else 503)."""
    ready, detail = await run_in_threadpool(_readiness, request.app.state.engine)
    return JSONResponse(
        {"status": "ok" if ready else "not_ready", **detail}, status_code=200 if ready else 503
    )


def _check_metrics_token(request: Request) -> None:
    token: str | None = request.app.state.settings.metrics_token
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8"), token.encode("utf-8")
    ):
        raise Unauthenticated("/metrics needs 'Authorization: Bearer <metrics token>'.")


def _read_backlog(factory: sessionmaker[Session]) -> None:
    try:
        with factory() as session:
            found = backlog(session)
    except SQLAlchemyError:  # the figures are unknown; the scrape still answers
        SEAL_QUEUE_DEPTH.set(math.nan)
        SEAL_LAG.set(math.nan)
        return
    SEAL_QUEUE_DEPTH.set(found.depth)
    lag = 0.0 if found.oldest is None else (utcnow() - found.oldest).total_seconds()
    SEAL_LAG.set(max(lag, 0.0))


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses=problem_responses(validation=False),
)
def metrics(request: Request) -> Response:
    """Prometheus text format. With a metrics token set, only for a caller sending it."""
    _check_metrics_token(request)
    _read_backlog(request.app.state.session_factory)
    return metrics_response(request)
