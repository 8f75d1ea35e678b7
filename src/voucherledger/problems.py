"""Every error as RFC 9457 problem details (``application/problem+json``).

One set of handlers renders the services' :class:`~voucherledger.core.errors.AppError`
subclasses, FastAPI's own validation errors, unknown routes and ledger refusals.
Nothing a client sends may produce a stack trace: anything unexpected becomes a bare
500 ``internal_error`` and is logged with the request id.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from voucherledger.core.db import is_unavailable
from voucherledger.core.errors import (
    PROBLEM_JSON,
    AppError,
    DatabaseUnavailable,
    IdempotencyKeyReused,
    InsufficientFunds,
)
from voucherledger.core.observability import is_private
from voucherledger.ledger import errors as ledger_errors

log = structlog.get_logger("voucherledger.errors")


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
    if status == 401:  # RFC 9110: a 401 names the scheme to authenticate with
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
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
    431: "headers_too_large",
}


def _bad_json(request: Request, what: str, msg: str, error_type: str) -> JSONResponse:
    """A body JSON cannot read: 422 ``validation_error``, like any other bad body."""
    return problem(
        request,
        422,
        "validation_error",
        "Validation failed",
        f"The request body {what}; see errors.",
        [{"loc": ["body"], "msg": msg, "type": error_type}],
    )


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):
        return _unexpected(request, exc)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        # FastAPI answers a body that json.loads refuses with something other than
        # JSONDecodeError (an integer of more than 4300 digits) with a bare 400.
        # It is malformed JSON like any other: 422, as documented.
        return _bad_json(request, "is not valid JSON", str(exc.__cause__), "json_invalid")
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        # json.loads gives up on arrays or objects nested about a thousand deep.
        return _bad_json(
            request, "is nested too deeply to parse", "JSON nested too deeply", "json_too_deep"
        )
    if exc.status_code == 400 and isinstance(exc.__context__, MultiPartException):
        # Starlette answers a form it cannot parse (no boundary, a broken part header,
        # too many parts) with a bare 400: a bad body like any other, 422.
        return _bad_json(
            request, "is not valid multipart/form-data", str(exc.detail), "multipart_invalid"
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


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_unavailable(exc):
        return _unexpected(request, exc)
    log.warning("database_unavailable", error_type=type(exc).__name__)
    return _app_error(
        request, DatabaseUnavailable("The database cannot be used right now; try again.")
    )


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
    # outside RequestContextMiddleware, so the request id and the headers every
    # response carries are added here.
    response = _unexpected(request, exc)
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        response.headers["x-request-id"] = request_id
    response.headers["x-content-type-options"] = "nosniff"
    if is_private(request.scope):
        response.headers["cache-control"] = "no-store"
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ledger_errors.LedgerError, _ledger_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
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
