"""A Python client of the voucherledger API (sync and async, over httpx).

    from voucherledger.client import Client
    with Client("https://vl.example.org", api_key="vl_...") as api:
        programme = api.get_programme("prg_...")
        for claim in api.iter_list_redemptions(programme_id=programme["id"]):
            ...

One method per OpenAPI operationId (generated: ``tools/gen_client.py``), an
``iter_<operation>`` per paginated list, an ``Idempotency-Key`` on every POST reused on
retries, and errors as :class:`ProblemError` carrying the answer's ``code``. This
package uses only httpx, standardwebhooks and the standard library.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from voucherledger.client._base import DEFAULT_TIMEOUT
from voucherledger.client._operations import AsyncOperations, SyncOperations
from voucherledger.client.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    ProblemError,
    RateLimitError,
    ServerError,
    ValidationError,
    WebhookVerificationError,
)

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "GoneError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProblemError",
    "RateLimitError",
    "ServerError",
    "ValidationError",
    "WebhookVerificationError",
]


class Client(SyncOperations):
    """The API over ``httpx.Client``; use it as a context manager, or call ``close()``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        user_agent: str | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        transport: httpx.BaseTransport | None = None,
        **httpx_options: Any,
    ) -> None:
        options = self._setup(
            base_url, api_key, timeout, max_retries, user_agent, backoff_base, backoff_cap
        )
        self._http = httpx.Client(transport=transport, **options, **httpx_options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(AsyncOperations):
    """The API over ``httpx.AsyncClient``; ``async with`` it, or ``await aclose()``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        user_agent: str | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
        **httpx_options: Any,
    ) -> None:
        options = self._setup(
            base_url, api_key, timeout, max_retries, user_agent, backoff_base, backoff_cap
        )
        self._http = httpx.AsyncClient(transport=transport, **options, **httpx_options)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
