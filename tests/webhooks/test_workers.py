"""Workers: one killed mid-send leaves its delivery to another after the lease (no
event lost); two servers on one PostgreSQL database deliver each event exactly once
per endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.programmes import session_factory
from tests.factories.server import running_server
from tests.factories.webhooks import Clock, emit_for, receiver
from voucherledger.core.settings import Settings
from voucherledger.webhooks.deliver import deliver_due
from voucherledger.webhooks.models import WebhookDelivery

SRC = Path(__file__).resolve().parents[2] / "src"


def test_a_worker_killed_mid_send_leaves_the_delivery_to_another(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"webhook_allow_insecure_urls": True, "webhook_timeout_seconds": 2.0}
    )
    with client_for(settings) as client, receiver("hold") as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        made = client.post(
            "/v1/webhook-endpoints",
            headers=funder.headers,
            json={"url": got.url, "event_types": ["*"]},
        )
        assert made.status_code == 201
        [event_id] = emit_for(factory, funder.id)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
        env.update(
            {
                "PYTHONPATH": str(SRC),
                "VOUCHERLEDGER_DATABASE_URL": settings.database_url,
                "VOUCHERLEDGER_SIGNING_KEY_FILE": str(tmp_path / "unused-key"),
                "VOUCHERLEDGER_WEBHOOK_ALLOW_INSECURE_URLS": "true",
                "VOUCHERLEDGER_WEBHOOK_TIMEOUT_SECONDS": "2",
                "VOUCHERLEDGER_WEBHOOK_INTERVAL_SECONDS": "0.1",
                "VOUCHERLEDGER_LOG_LEVEL": "WARNING",
            }
        )
        worker = subprocess.Popen([sys.executable, "-m", "voucherledger", "deliver"], env=env)
        try:
            assert got.started.wait(30), "the worker never sent"
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
        got.mode = "ok"
        got.release.set()
        clock = Clock()
        assert deliver_due(factory, settings, clock=clock) == 0  # still leased
        clock.move(seconds=40)  # past the lease (timeout + 30 s)
        assert deliver_due(factory, settings, clock=clock) == 1
        with factory() as session:
            delivery = session.execute(select(WebhookDelivery)).scalar_one()
        assert delivery.status == "succeeded"
        assert [r.headers["webhook-id"] for r in got.requests] == [event_id, event_id]


@pytest.mark.usefixtures("pg_only")
def test_two_servers_deliver_each_event_once_per_endpoint(settings: Settings) -> None:
    settings = settings.model_copy(update={"webhook_allow_insecure_urls": True})
    serving = settings.model_copy(
        update={"webhook_delivery_enabled": True, "webhook_interval_seconds": 0.05}
    )
    n = 40
    with client_for(settings) as client, receiver() as got:
        factory = session_factory(client)
        funder = make_party(client, admin_headers(client), "funder")
        for tag in ("a", "b"):
            made = client.post(
                "/v1/webhook-endpoints",
                headers=funder.headers,
                json={"url": f"{got.url}?e={tag}", "event_types": ["*"]},
            )
            assert made.status_code == 201
        with running_server(serving), running_server(serving):
            ids = []
            for _ in range(4):
                ids += emit_for(factory, funder.id, n // 4)
                time.sleep(0.1)
            deadline = time.monotonic() + 60
            while len(got.requests) < 2 * n and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)  # any double would arrive by now
        seen = Counter((r.path, r.headers["webhook-id"]) for r in got.requests)
        expected = {(f"/hook?e={tag}", event_id) for tag in ("a", "b") for event_id in ids}
        assert set(seen) == expected
        assert set(seen.values()) == {1}
