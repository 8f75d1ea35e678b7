"""A process works on at most ``worker_threads`` requests at once; the rest wait their
turn in the event loop (issue 14; docs/performance.md, "Worker threads")."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from fastapi.routing import APIRoute

from voucherledger.app import create_app
from voucherledger.core.settings import Settings


class Gauge:
    """How many requests are inside the endpoint now, and the most there ever were."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def endpoint(self) -> dict[str, int]:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        return {"ok": 1}


async def _fire(settings: Settings, requests: int) -> tuple[Gauge, list[int]]:
    app = create_app(settings)
    gauge = Gauge()
    app.router.routes.append(APIRoute("/probe-threads", gauge.endpoint, methods=["GET"]))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.get("/probe-threads") for _ in range(requests)))
    return gauge, [answer.status_code for answer in answers]


@pytest.mark.parametrize("limit", [3, 6])
def test_requests_beyond_the_limit_wait_their_turn(settings: Settings, limit: int) -> None:
    limited = settings.model_copy(update={"worker_threads": limit})
    gauge, statuses = asyncio.run(_fire(limited, 12))
    assert statuses == [200] * 12
    assert gauge.most == limit
