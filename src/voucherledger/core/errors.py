"""Errors as RFC 9457 problem details, each with a stable ``code``.

Services raise an :class:`AppError` subclass; one set of handlers renders every
error, including FastAPI's own validation errors, unknown routes and ledger
refusals, as ``application/problem+json``. Nothing a client sends may produce a
stack trace: anything unexpected becomes a bare 500 ``internal_error`` and is
logged with the request id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from voucherledger.ledger import errors as ledger_errors

PROBLEM_JSON = "application/problem+json"

log = structlog.get_logger("voucherledger.errors")


class AppError(Exception):
    """Base of every error a client may see. ``code`` is part of the API contract."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class Unauthenticated(AppError):
    """No API key, an unknown key, or a revoked key."""

    status, code, title = 401, "unauthenticated", "Authentication required"


class Forbidden(AppError):
    """The caller's role may not use this endpoint at all."""

    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    """Unknown, or belongs to another party (never 403 for other parties' objects)."""

    status, code, title = 404, "not_found", "Not found"


class ValidationFailed(AppError):
    """Input that is well-formed JSON but breaks a rule; ``errors`` lists the fields."""

    status, code, title = 422, "validation_error", "Validation failed"

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(detail, errors=list(errors))


class Conflict(AppError):
    """The request clashes with the current state of an object."""

    status, code, title = 409, "conflict", "Conflict"


class IdempotencyKeyReused(AppError):
    """The same Idempotency-Key was sent earlier with a different request."""

    status, code, title = 409, "idempotency_key_reused", "Idempotency key reused"


class InsufficientFunds(AppError):
    """A budget, voucher or payable would go below zero."""

    status, code, title = 409, "insufficient_funds", "Insufficient funds"


class InvalidState(AppError):
    """The object is not in a state that allows this transition."""

    status, code, title = 409, "invalid_state", "Invalid state"


class RateLimited(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response of this API."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None
    request_id: str | None = None


def problem_responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` mapping that documents a route's errors in OpenAPI."""
    out: dict[int | str, dict[str, Any]] = {}
    documented: tuple[type[AppError], ...] = (Unauthenticated, *errors)
    for err in documented:
        entry = out.setdefault(
            err.status,
            {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": ""},
        )
        codes = entry["description"].split(", ") if entry["description"] else []
        if err.code not in codes:
            codes.append(err.code)
        entry["description"] = ", ".join(codes)
    return out


def problem(
    request: Request,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:voucherledger:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _app_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, AppError):
        return _unexpected(request, exc)
    extra = dict(exc.extra)
    errors = extra.pop("errors", None)
    headers = extra.pop("headers", None)
    return problem(request, exc.status, exc.code, exc.title, exc.detail, errors, headers)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        return _unexpected(request, exc)
    errors = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    return problem(request, 422, "validation_error", "Validation failed",
                   "The request did not pass validation; see errors.", errors)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):
        return _unexpected(request, exc)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    return problem(request, exc.status_code, code, title, str(exc.detail),
                   headers=getattr(exc, "headers", None))


def _ledger_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ledger_errors.InsufficientFunds):
        return _app_error(request, InsufficientFunds(str(exc)))
    if isinstance(exc, ledger_errors.IdempotencyConflict):
        return _app_error(request, IdempotencyKeyReused(str(exc)))
    # Any other ledger refusal means a service built a bad transaction: a bug.
    return _unexpected(request, exc)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return problem(request, 500, "internal_error", "Internal error",
                   "An unexpected error occurred; it has been logged with the request id.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ledger_errors.LedgerError, _ledger_error)
    app.add_exception_handler(Exception, _unexpected)
