"""What a request must be before any route sees it: headers and a body within their
limits, and no control characters in its path or query.

:class:`RequestGuard` is a pure ASGI middleware (inside the request-id middleware, so
its problems carry the id). It answers, without calling the app:

- 431 ``headers_too_large`` when the request's headers pass ``max_header_bytes``;
- 422 ``validation_error`` when the percent-decoded path or a query parameter holds a
  character :func:`~voucherledger.core.schemas.forbidden_character` refuses in a
  single-line string (U+0000 above all: PostgreSQL cannot take it, SQLite can);
- 413 ``payload_too_large`` when the body passes its limit: a ``Content-Length`` above
  it is refused up front, and a body without one is counted as it arrives and refused
  as soon as it passes. Nothing is read past the limit, whether or not the request
  carries a key.

The body (at most the limit) is read here and handed on to the app as one message.
"""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voucherledger.core.errors import (
    PROBLEM_JSON,
    AppError,
    HeadersTooLarge,
    PayloadTooLarge,
    ValidationFailed,
)
from voucherledger.core.schemas import forbidden_character


def _media_type(content_type: str) -> tuple[str, str]:
    message = email.message.Message()
    message["content-type"] = content_type
    return message.get_content_maintype(), message.get_content_subtype()


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or ``application/*+json``, parameters aside: what FastAPI
    parses as JSON."""
    maintype, subtype = _media_type(content_type)
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


def is_form_media_type(content_type: str) -> bool:
    """``multipart/form-data``, parameters (the boundary) aside."""
    return _media_type(content_type) == ("multipart", "form-data")


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """A larger (or smaller) body limit for the requests of one method and path."""

    method: str
    path: re.Pattern[str]
    max_bytes: int


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
        body_limits: Sequence[BodyLimit] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.body_limits = tuple(body_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _send_problem(scope, send, refusal)
            return
        limit = self._body_limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_problem(scope, send, _too_large(limit))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was complete
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_problem(scope, send, _too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _refusal(self, scope: Scope) -> AppError | None:
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        if sum(len(name) + len(value) for name, value in headers) > self.max_header_bytes:
            return HeadersTooLarge(
                f"The request's headers are above {self.max_header_bytes} bytes in all."
            )
        errors: list[dict[str, Any]] = []
        if forbidden_character(scope["path"], multiline=False) is not None:
            errors.append(_character_error(["path"], scope["path"]))
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            for part in (name, value):
                if forbidden_character(part, multiline=False) is not None:
                    errors.append(_character_error(["query", name], part))
                    break
        if errors:
            return ValidationFailed("The path or query holds a control character.", errors)
        return None

    def _body_limit(self, scope: Scope) -> int:
        for rule in self.body_limits:
            if scope["method"] == rule.method and rule.path.fullmatch(scope["path"]):
                return rule.max_bytes
        return self.max_body_bytes


def _character_error(loc: list[str], value: str) -> dict[str, Any]:
    bad = forbidden_character(value, multiline=False) or "?"
    return {
        "loc": loc,
        "msg": f"character U+{ord(bad):04X} is not allowed here",
        "type": "string_control_character",
    }


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is above this route's limit of {limit} bytes.")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_problem(scope: Scope, send: Send, error: AppError) -> None:
    body: dict[str, Any] = {
        "type": f"urn:voucherledger:problem:{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
    }
    if "errors" in error.extra:
        body["errors"] = error.extra["errors"]
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    if error.status in (413, 431):
        # The rest of the request was not read: the connection cannot be reused.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
