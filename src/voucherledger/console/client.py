"""The console's only way to the service: the HTTP API, called in-process.

Every page of the console is rendered from answers of ``/v1`` called as the person
in the browser: the request goes through the same ASGI app (middleware, routing,
authentication, role checks, idempotency, transactions) as a request from curl, with
the browser's session cookie, its CSRF token, its client address and an
``Idempotency-Key`` the form carried. So the console cannot see or do anything the
API would not let the same person see or do, and there is no second path to the
database to keep in step (the import contract ``console-through-api`` forbids one).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request

from voucherledger.core.auth import CSRF_HEADER, SESSION_COOKIE

INTERNAL_BASE = "http://console.internal"


@dataclass
class ApiProblem(Exception):
    """A problem+json answer of the API, for the page to explain."""

    status: int
    code: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def field_errors(self) -> dict[str, str]:
        """The first message for each field a 422 named: the last name in its location,
        list indexes aside (``["body", "supplier", "service_categories", 0]`` is
        ``service_categories``); an error of the whole body is ``_form``."""
        out: dict[str, str] = {}
        for error in self.errors:
            loc = [str(part) for part in error.get("loc") or [] if not str(part).isdigit()]
            name = loc[-1] if loc and loc[-1] != "body" else "_form"
            out.setdefault(name, str(error.get("msg") or ""))
        return out


@dataclass(frozen=True)
class Streamed:
    """An answer whose body comes as it is sent (:meth:`Api.stream`)."""

    status: int
    headers: httpx.Headers
    body: AsyncIterator[bytes]


@dataclass(frozen=True)
class Upload:
    """A file to send as one multipart part."""

    filename: str
    content: bytes
    media_type: str


class Api:
    """The API as the browser's person. ``csrf`` is the session's token, sent on
    every state-changing call (the API checks it, not the console)."""

    def __init__(self, request: Request, *, token: str | None = None) -> None:
        self._request = request
        self._token = token if token is not None else request.cookies.get(SESSION_COOKIE)
        self.csrf: str | None = None
        self.set_cookies: list[str] = []

    @property
    def signed_in(self) -> bool:
        return bool(self._token)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        files: dict[str, Upload] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """One call of the API; the raw response (no status check)."""
        address = self._address()
        headers = self._headers(method, idempotency_key)
        transport = httpx.ASGITransport(app=self._request.app, client=address)
        async with httpx.AsyncClient(transport=transport, base_url=INTERNAL_BASE) as http:
            response = await http.request(
                method,
                path,
                params={k: v for k, v in (params or {}).items() if v not in (None, "")},
                json=body if files is None else None,
                data=body if files is not None else None,
                files=(
                    {name: (f.filename, f.content, f.media_type) for name, f in files.items()}
                    if files
                    else None
                ),
                headers=headers,
            )
        self.set_cookies.extend(response.headers.get_list("set-cookie"))
        return response

    def _address(self) -> tuple[str, int]:
        client = self._request.client
        return (client.host, client.port) if client is not None else ("127.0.0.1", 0)

    def _headers(self, method: str, idempotency_key: str | None) -> dict[str, str]:
        """The browser's person on a call: session cookie, user agent, CSRF token on a
        state-changing call, the form's idempotency key."""
        headers = {"Accept": "application/json"}
        user_agent = self._request.headers.get("user-agent")
        if user_agent:
            headers["User-Agent"] = user_agent
        if self._token:
            headers["Cookie"] = f"{SESSION_COOKIE}={self._token}"
        if method not in ("GET", "HEAD") and self.csrf:
            headers[CSRF_HEADER] = self.csrf
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def stream(self, path: str, *, params: dict[str, Any] | None = None) -> Streamed:
        """``GET path`` with its body as the API sends it, chunk by chunk: for files too
        large to hold (httpx's ASGI transport buffers a whole body). The app runs in a
        task handing chunks over a small queue, so it waits while the browser reads.
        An error answer (4xx/5xx) is read whole and raised as :class:`ApiProblem`."""
        query = urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")})
        headers = [(b"host", INTERNAL_BASE.split("//", 1)[1].encode())] + [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self._headers("GET", None).items()
        ]
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": headers,
            "client": self._address(),
            "server": ("console.internal", 80),
        }
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=16)
        done = asyncio.Event()
        asked = False

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                await queue.put(("start", message))
            elif message["type"] == "http.response.body":
                await queue.put(("body", message.get("body", b"")))
                if not message.get("more_body", False):
                    await queue.put(("end", None))

        async def run() -> None:
            try:
                await self._request.app(scope, receive, send)
            except Exception as exc:  # handed to the reader, raised there
                await queue.put(("error", exc))
            await queue.put(("end", None))

        task = asyncio.create_task(run())
        kind, first = await queue.get()
        if kind == "error":
            raise first
        if kind != "start":
            raise RuntimeError("the API answered without a response start")
        answer = httpx.Headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in first["headers"]]
        )
        self.set_cookies.extend(answer.get_list("set-cookie"))

        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    kind, item = await queue.get()
                    if kind == "error":
                        raise item
                    if kind == "end":
                        return
                    if item:
                        yield item
            finally:
                done.set()
                if not task.done():
                    task.cancel()

        streamed = Streamed(status=int(first["status"]), headers=answer, body=body())
        if streamed.status >= 400:
            content = b"".join([chunk async for chunk in streamed.body])
            raise problem_of(httpx.Response(streamed.status, headers=answer, content=content))
        return streamed

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        files: dict[str, Upload] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The JSON of a successful answer; :class:`ApiProblem` otherwise."""
        response = await self.send(
            method,
            path,
            params=params,
            body=body,
            files=files,
            idempotency_key=idempotency_key,
        )
        if response.status_code >= 300:  # a redirect is no answer to a console's call
            raise problem_of(response)
        if response.status_code == 204 or not response.content:
            return None
        if "json" not in response.headers.get("content-type", ""):
            return response.content
        return response.json()

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: Any = None, *, key: str | None = None) -> Any:
        return await self.call("POST", path, body=body, idempotency_key=key)

    async def all_pages(self, path: str, *, limit: int = 200, **params: Any) -> list[Any]:
        """Every item of a paginated list (``data`` and ``next_cursor``)."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = await self.get(path, limit=limit, cursor=cursor, **params)
            items.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items


def problem_of(response: httpx.Response) -> ApiProblem:
    """The :class:`ApiProblem` of an error answer, whatever its body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    known = {"type", "title", "status", "detail", "code", "errors", "instance", "request_id"}
    return ApiProblem(
        status=response.status_code,
        code=str(body.get("code") or f"http_{response.status_code}"),
        detail=str(body.get("detail") or body.get("title") or ""),
        errors=list(body.get("errors") or []),
        extra={k: v for k, v in body.items() if k not in known},
    )
