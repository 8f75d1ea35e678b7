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
    """Too many failed voucher-code look-ups by one supplier in a minute."""

    status, code, title = 429, "rate_limited", "Too many requests"


class ProgrammeClosed(AppError):
    """The programme is closed (or past its end): no deposits, no issuance."""

    status, code, title = 409, "programme_closed", "Programme closed"


class GroupNotEligible(AppError):
    """The group's type or origin country is outside the programme's rules."""

    status, code, title = 422, "group_not_eligible", "Group not eligible"


class LimitExceeded(AppError):
    """Above the programme's maximum voucher amount or per-group total."""

    status, code, title = 422, "limit_exceeded", "Limit exceeded"


class CategoryNotAllowed(AppError):
    """A service category outside what the programme, voucher or supplier allows."""

    status, code, title = 422, "category_not_allowed", "Category not allowed"


class SupplierNotAccredited(AppError):
    """The supplier is not (or no longer) accredited for this programme and category."""

    status, code, title = 403, "supplier_not_accredited", "Supplier not accredited"


class VoucherExpired(AppError):
    status, code, title = 409, "voucher_expired", "Voucher expired"


class VoucherRevoked(AppError):
    status, code, title = 409, "voucher_revoked", "Voucher revoked"


class VoucherExhausted(AppError):
    status, code, title = 409, "voucher_exhausted", "Voucher exhausted"


class AlreadySettled(AppError):
    status, code, title = 409, "already_settled", "Already settled"


class NothingToSettle(AppError):
    status, code, title = 409, "nothing_to_settle", "Nothing to settle"


class BatchRejected(AppError):
    """A batch with at least one bad item: nothing is written, every bad item is listed.

    Status and code are those of the first bad item; ``errors`` holds
    ``{index, code, detail}`` for each bad item.
    """

    def __init__(self, failures: Sequence[tuple[int, AppError]]) -> None:
        first = failures[0][1]
        self.status, self.code, self.title = first.status, first.code, first.title
        detail = f"{len(failures)} item(s) of the batch are refused; nothing was written."
        super().__init__(
            detail,
            errors=[
                {"index": index, "code": err.code, "detail": err.detail} for index, err in failures
            ],
        )


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response of this API."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None
    request_id: str | None = None


def problem_responses(
    *errors: type[AppError], validation: bool = True
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` mapping that documents a route's errors in OpenAPI.

    401 is always there, and 422 unless ``validation=False`` (a route that takes
    no input at all): declaring 422 keeps FastAPI from documenting its own
    ``HTTPValidationError`` body, which this API never sends.
    """
    out: dict[int | str, dict[str, Any]] = {}
    always: tuple[type[AppError], ...] = (
        (Unauthenticated, ValidationFailed) if validation else (Unauthenticated,)
    )
    documented: tuple[type[AppError], ...] = (*always, *errors)
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
    return problem(
        request,
        422,
        "validation_error",
        "Validation failed",
        "The request did not pass validation; see errors.",
        errors,
    )


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
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        # FastAPI answers a body that json.loads refuses with something other than
        # JSONDecodeError (an integer of more than 4300 digits) with a bare 400.
        # It is malformed JSON like any other: 422, as documented.
        return problem(
            request,
            422,
            "validation_error",
            "Validation failed",
            "The request body is not valid JSON; see errors.",
            [{"loc": ["body"], "msg": str(exc.__cause__), "type": "json_invalid"}],
        )
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    return problem(
        request,
        exc.status_code,
        code,
        title,
        str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


def _ledger_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ledger_errors.InsufficientFunds):
        return _app_error(request, InsufficientFunds(str(exc)))
    if isinstance(exc, ledger_errors.IdempotencyConflict):
        return _app_error(request, IdempotencyKeyReused(str(exc)))
    # Any other ledger refusal means a service built a bad transaction: a bug.
    return _unexpected(request, exc)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return problem(
        request,
        500,
        "internal_error",
        "Internal error",
        "An unexpected error occurred; it has been logged with the request id.",
    )


def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Starlette runs the handler of ``Exception`` in its outermost middleware,
    # outside RequestContextMiddleware, so the request id header is added here.
    response = _unexpected(request, exc)
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        response.headers["x-request-id"] = request_id
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ledger_errors.LedgerError, _ledger_error)
    app.add_exception_handler(Exception, _unhandled)
    _document_problems_as_problem_json(app)


def _document_problems_as_problem_json(app: FastAPI) -> None:
    """Error responses are sent as ``application/problem+json`` only.

    FastAPI puts a ``responses=`` model under the route's media type
    (``application/json``); move it to ``application/problem+json``, where
    :func:`problem_responses` declared it, so the document says what is sent.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI caches it; moving twice is a no-op
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if PROBLEM_JSON in content and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        return document

    app.openapi = openapi  # type: ignore[method-assign]
