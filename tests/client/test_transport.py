"""The client's transport against fake answers (httpx.MockTransport): the same
Idempotency-Key on every retry, which failures are retried, problem+json as exceptions,
query strings and answer decoding."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from voucherledger.client import (
    AsyncClient,
    Client,
    ConflictError,
    NotFoundError,
    ProblemError,
    ServerError,
    ValidationError,
)

PROBLEM = {"type": "about:blank", "title": "Conflict", "status": 409, "code": "conflict"}


def _created() -> httpx.Response:
    return httpx.Response(201, json={"id": "acc_1"})


def _client(handler: httpx.MockTransport, max_retries: int = 3) -> Client:
    client = Client("http://vl.test", api_key="vl_k", transport=handler, max_retries=max_retries)
    client._sleep = lambda seconds: None
    return client


def test_a_connection_error_is_retried_with_the_same_idempotency_key() -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx.ConnectError("refused", request=request)
        assert request.headers["Authorization"] == "Bearer vl_k"
        return _created()

    with _client(httpx.MockTransport(handler)) as api:
        assert api.create_account(body={"kind": "auditor", "name": "A"}) == {"id": "acc_1"}
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert len(keys[0]) == 36  # a uuid4


def test_a_503_then_201_reuses_the_key_and_honours_retry_after() -> None:
    keys: list[str] = []
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            return httpx.Response(503, headers={"Retry-After": "2"}, json={"code": "x"})
        return _created()

    api = _client(httpx.MockTransport(handler))
    api._sleep = slept.append
    assert api.create_account(body={}, idempotency_key="onboard-42") == {"id": "acc_1"}
    assert keys == ["onboard-42", "onboard-42"]
    assert slept == [2.0]


def test_a_read_timeout_is_retried_and_a_get_carries_no_key() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"id": "prg_1"})

    assert _client(httpx.MockTransport(handler)).get_programme("prg_1") == {"id": "prg_1"}
    assert len(calls) == 3
    assert "Idempotency-Key" not in calls[0].headers


def test_retries_stop_after_max_retries() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, json={"code": "unavailable", "title": "Down"})

    with pytest.raises(ServerError) as raised:
        _client(httpx.MockTransport(handler), max_retries=2).get_me()
    assert raised.value.status == 503
    assert raised.value.code == "unavailable"
    assert len(calls) == 3

    def refusing(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(httpx.ConnectError):
        _client(httpx.MockTransport(refusing), max_retries=1).get_me()


@pytest.mark.parametrize(
    ("status", "cls"), [(404, NotFoundError), (409, ConflictError), (422, ValidationError)]
)
def test_a_4xx_is_never_retried_and_raises_with_its_code(
    status: int, cls: type[ProblemError]
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(
            status,
            json={**PROBLEM, "status": status, "detail": "no"},
            headers={"Content-Type": "application/problem+json"},
        )

    with pytest.raises(cls) as raised:
        _client(httpx.MockTransport(handler)).create_account(body={})
    assert calls == [1]
    assert (raised.value.status, raised.value.code, raised.value.detail) == (
        status,
        "conflict",
        "no",
    )
    assert raised.value.body["title"] == "Conflict"


def test_query_parameters_and_answers_other_than_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("qr.svg"):
            return httpx.Response(200, text="<svg/>", headers={"Content-Type": "image/svg+xml"})
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(200, json={"data": [], "next_cursor": None})

    api = _client(httpx.MockTransport(handler))
    api.list_ledger_transactions(since=datetime(2027, 1, 2, tzinfo=UTC), limit=5, account=None)
    assert seen[-1].url.params["since"] == "2027-01-02T00:00:00+00:00"
    assert seen[-1].url.params["limit"] == "5"
    assert "account" not in seen[-1].url.params
    assert api.get_voucher_qr("vch/1") == "<svg/>"
    assert seen[-1].url.raw_path == b"/v1/vouchers/vch%2F1/qr.svg"
    api.revoke_key("key_1")
    assert seen[-1].method == "DELETE"


def test_the_async_client_retries_with_the_same_key() -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx.RemoteProtocolError("dropped", request=request)
        return _created()

    async def run() -> object:
        api = AsyncClient("http://vl.test", transport=httpx.MockTransport(handler))
        api.backoff_base = 0.001
        async with api:
            return await api.create_account(body={})

    assert asyncio.run(run()) == {"id": "acc_1"}
    assert len(keys) == 2
    assert keys[0] == keys[1]


def test_an_iterator_follows_the_cursor_across_pages() -> None:
    pages = {
        None: {"data": [1, 2], "next_cursor": "c1"},
        "c1": {"data": [3], "next_cursor": "c2"},
        "c2": {"data": [], "next_cursor": None},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["programme_id"] == "prg_1"
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    api = _client(httpx.MockTransport(handler))
    assert list(api.iter_list_redemptions(programme_id="prg_1")) == [1, 2, 3]
