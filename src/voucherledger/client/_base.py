"""The transport under the generated operations: auth, retries, Idempotency-Key, errors.

Every POST carries an ``Idempotency-Key`` (a uuid4 unless the caller gives one), the
same on every retry, so a retried POST is replayed by the server, never done twice.
Connection errors and 503 are retried with exponential backoff and jitter (a 503's
``Retry-After`` is honoured up to a cap); a 4xx never is.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from voucherledger.client.errors import problem_from_response

__all__ = ["DEFAULT_TIMEOUT", "USER_AGENT", "AsyncTransportMixin", "SyncTransportMixin"]

USER_AGENT = "voucherledger-python/0.1"
DEFAULT_TIMEOUT = 30.0
RETRY_AFTER_CAP = 30.0
_RETRIED_STATUSES = frozenset({503})
# Errors where the request may not have reached the server, or its answer was lost.
_RETRIED_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _path(value: str) -> str:
    """A path parameter, percent-encoded (no slash may escape its segment)."""
    return quote(str(value), safe="")


def _query(*entries: tuple[str, Any, str]) -> list[tuple[str, str]]:
    """The query string of (name, value, how) entries; None values are left out."""
    out: list[tuple[str, str]] = []
    for name, value, how in entries:
        if value is None:
            continue
        if how == "list":
            out += [(name, str(item)) for item in value]
        elif how == "object":
            out += [(f"{name}[{key}]", str(item)) for key, item in value.items()]
        elif how == "date" and isinstance(value, datetime):
            out.append((name, value.isoformat()))
        elif isinstance(value, bool):
            out.append((name, "true" if value else "false"))
        else:
            out.append((name, str(value)))
    return out


def _decode(response: httpx.Response, expect: str) -> Any:
    if response.status_code == 204 or expect == "none":
        return None
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return response.json()
    if expect == "bytes" or not (
        media.startswith("text/") or media.endswith(("xml", "ndjson")) or expect == "text"
    ):
        return response.content
    return response.text


class _Settings:
    """What both transports share: where, who, how patiently."""

    base_url: str
    max_retries: int
    backoff_base: float
    backoff_cap: float

    def _setup(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        user_agent: str | None,
        backoff_base: float,
        backoff_cap: float,
    ) -> dict[str, Any]:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        headers = {"User-Agent": user_agent or USER_AGENT, "Accept": "application/json, */*"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return {"base_url": self.base_url, "headers": headers, "timeout": timeout}

    def _headers(
        self, method: str, idempotency_key: str | None, extra: Mapping[str, str] | None
    ) -> dict[str, str]:
        headers = dict(extra or {})
        if method == "POST":
            headers.setdefault("Idempotency-Key", idempotency_key or str(uuid.uuid4()))
        return headers

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds before retry ``attempt`` (1-based): Retry-After if given, else backoff."""
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.strip().isdigit():
                return min(float(after), RETRY_AFTER_CAP)
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret

    def _should_retry(self, attempt: int, response: httpx.Response | None) -> bool:
        if attempt > self.max_retries:
            return False
        return response is None or response.status_code in _RETRIED_STATUSES

    @staticmethod
    def _result(response: httpx.Response, expect: str) -> Any:
        if response.status_code >= 400:
            raise problem_from_response(response)
        return _decode(response, expect)


class SyncTransportMixin(_Settings):
    """Sends a request with ``httpx.Client``, retrying as the module says."""

    _http: httpx.Client
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Iterable[tuple[str, str]] | None = None,
        json: Any = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        expect: str = "json",
    ) -> Any:
        sent = self._headers(method, idempotency_key, headers)
        attempt = 0
        while True:
            attempt += 1
            response: httpx.Response | None = None
            try:
                response = self._http.request(
                    method,
                    path,
                    params=list(params or []),
                    json=json,
                    files=files,
                    data=data,
                    headers=sent,
                )
            except _RETRIED_ERRORS:
                if not self._should_retry(attempt, None):
                    raise
            if response is not None and not self._should_retry(attempt, response):
                return self._result(response, expect)
            self._sleep(self._delay(attempt, response))


class AsyncTransportMixin(_Settings):
    """Sends a request with ``httpx.AsyncClient``, retrying as the module says."""

    _http: httpx.AsyncClient

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Iterable[tuple[str, str]] | None = None,
        json: Any = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        expect: str = "json",
    ) -> Any:
        sent = self._headers(method, idempotency_key, headers)
        attempt = 0
        while True:
            attempt += 1
            response: httpx.Response | None = None
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=list(params or []),
                    json=json,
                    files=files,
                    data=data,
                    headers=sent,
                )
            except _RETRIED_ERRORS:
                if not self._should_retry(attempt, None):
                    raise
            if response is not None and not self._should_retry(attempt, response):
                return self._result(response, expect)
            await self._sleep(self._delay(attempt, response))
