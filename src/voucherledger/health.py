"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from voucherledger.core.observability import metrics_response
from voucherledger.ops.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _readiness(engine: Engine) -> tuple[bool, dict[str, str | None]]:
    head = head_revision()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(engine)
    except SQLAlchemyError as exc:
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


@router.get("/metrics", operation_id="metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return metrics_response(request)
