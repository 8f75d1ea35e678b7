"""Request ids, structured logs and Prometheus metrics.

A pure ASGI middleware (no per-request task switching) gives every request an
id — the caller's ``X-Request-ID`` if it is sane, else a new one — binds it to
the log context, returns it in the response, and counts and times the request
under its route template.

The same pass adds the headers every response carries: ``X-Content-Type-Options:
nosniff`` everywhere, and ``Cache-Control: no-store`` on every response that may hold
an API key, a voucher code or a party's data — whenever the caller sent credentials,
and on everything under ``/v1/`` (where every resource belongs to a party). A route's
own Cache-Control is replaced unless it says ``no-store`` too (an evidence file's
``private, no-store``).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voucherledger.core.ids import random_hex

REQUESTS = Counter(
    "voucherledger_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram(
    "voucherledger_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# The seal backlog, read from the database when /metrics is scraped (health.py).
SEAL_QUEUE_DEPTH = Gauge(
    "voucherledger_seal_queue_depth", "Journal transactions waiting to be sealed"
)
SEAL_LAG = Gauge(
    "voucherledger_seal_lag_seconds",
    "Age of the oldest journal transaction not yet sealed (0 when none waits)",
)
# The sweeps' work, whoever runs them (the API, `voucherledger sweep`, a background
# sweeper): counted by sweep/service.py when the sweep's transaction commits.
SWEEP_VOUCHERS_EXPIRED = Counter(
    "voucherledger_sweep_vouchers_expired", "Vouchers expired by sweeps"
)
SWEEP_HOLDS_RELEASED = Counter(
    "voucherledger_sweep_holds_released", "Timed-out holds released by sweeps"
)

_PENDING = "voucherledger.pending_counts"


def _count_pending(session: Session) -> None:
    for counter, amount in session.info.pop(_PENDING, ()):
        counter.inc(amount)


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def count_on_commit(session: Session, counter: Counter, amount: int) -> None:
    """Add ``amount`` to ``counter`` once the session's transaction commits; nothing if
    it rolls back (a failed or retried request counts only what it committed)."""
    if amount <= 0:
        return
    session.info.setdefault(_PENDING, []).append((counter, amount))
    if not event.contains(session, "after_commit", _count_pending):
        event.listen(session, "after_commit", _count_pending)
        event.listen(session, "after_rollback", _drop_pending)


# Where the router records no route template (a mounted ASGI app such as the static
# files), the mounted app names itself here, in the request's state.
ROUTE_LABEL = "voucherledger.route"


class Labelled:
    """An ASGI app that names its requests ``label`` in the metrics and the access log."""

    def __init__(self, app: ASGIApp, label: str) -> None:
        self.app = app
        self.label = label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})[ROUTE_LABEL] = self.label
        await self.app(scope, receive, send)


_SANE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")

log = structlog.get_logger("voucherledger.http")

NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")


def is_private(scope: Scope) -> bool:
    """Whether the response may hold a secret or a party's data (see the module doc)."""
    if scope["path"].startswith("/v1/"):
        return True
    return any(name == b"authorization" for name, _ in scope.get("headers") or ())


def protective_headers(
    headers: list[tuple[bytes, bytes]], private: bool
) -> list[tuple[bytes, bytes]]:
    """``headers`` with nosniff and, for a private response, no-store (replacing any
    other Cache-Control: one that says no-store already, such as ``private, no-store``,
    is kept)."""
    # A response that already forbids storing (``private, no-store``) says so itself.
    says_no_store = private and any(
        name.lower() == b"cache-control" and b"no-store" in value for name, value in headers
    )
    kept = [
        (name, value)
        for name, value in headers
        if name.lower() != b"x-content-type-options"
        and not (private and name.lower() == b"cache-control" and not says_no_store)
    ]
    kept.append(NOSNIFF)
    if private and not says_no_store:
        kept.append(NO_STORE)
    return kept


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Log lines to stderr: JSON, or for people; coloured only when stderr is a terminal
    (a file, a pipe or journald gets no ANSI escapes)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=_is_terminal(sys.stderr))
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _route_template(scope: Scope) -> str:
    """The template of the route that handled the request (``/v1/accounts/{account_id}``).

    Routing records the route it chose in ``scope["route"]``; with FastAPI's
    included routers the top-level routes are router wrappers without a path, so
    matching the top-level routes again here would name none of them.
    """
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    label = (scope.get("state") or {}).get(ROUTE_LABEL)
    return label if isinstance(label, str) else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SANE_ID.match(incoming) else random_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        private = is_private(scope)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = protective_headers(list(message.get("headers", [])), private)
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            principal = (scope.get("state") or {}).get("principal")
            # The access line: one per request, at INFO (ERROR for a 5xx). The route
            # template, never the raw path, which may carry ids a log should not keep.
            (log.error if status >= 500 else log.info)(
                "request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                request_id=request_id,
                account_id=getattr(principal, "account_id", None),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def metrics_response(_request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
