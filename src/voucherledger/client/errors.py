"""The client's exceptions: an API error answer (problem+json) as a ``ProblemError``.

Every ``ProblemError`` carries the answer's ``status`` and stable ``code``; subclasses
by status let a caller catch one family (``NotFoundError``, ``ConflictError``…).
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "GoneError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProblemError",
    "RateLimitError",
    "ServerError",
    "ValidationError",
    "WebhookVerificationError",
    "problem_from_response",
]


class ProblemError(Exception):
    """A non-2xx answer of the API, from its ``application/problem+json`` body."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None,
        body: dict[str, Any],
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail or title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.body = body
        self.response = response


class BadRequestError(ProblemError):
    """400."""


class AuthenticationError(ProblemError):
    """401: no key, or a wrong one."""


class PermissionDeniedError(ProblemError):
    """403."""


class NotFoundError(ProblemError):
    """404."""


class ConflictError(ProblemError):
    """409: the state does not allow it (or an Idempotency-Key reused for another request)."""


class GoneError(ProblemError):
    """410."""


class ValidationError(ProblemError):
    """422: the request is malformed; ``body["errors"]`` says where."""


class RateLimitError(ProblemError):
    """429."""


class ServerError(ProblemError):
    """5xx (a 503 still there after the retries)."""


class WebhookVerificationError(Exception):
    """A webhook whose signature, timestamp or headers do not check out."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: ValidationError,
    429: RateLimitError,
}


def problem_from_response(response: httpx.Response) -> ProblemError:
    """The exception for an error answer; a body that is not problem+json still gets one."""
    body: dict[str, Any] = {}
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        body = parsed
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ProblemError)
    return cls(
        status=status,
        code=str(body.get("code") or f"http_{status}"),
        title=str(body.get("title") or response.reason_phrase or "Error"),
        detail=body.get("detail") if isinstance(body.get("detail"), str) else None,
        body=body,
        response=response,
    )
