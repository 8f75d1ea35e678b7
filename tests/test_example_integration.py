"""The "done when" of issue 13: the funder's example integration (examples/
funder_integration.py) runs against a real server delivering webhooks, and prints the
same totals as the programme's balances; its CSV matches ``list_redemptions``."""

from __future__ import annotations

import base64
import csv
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.client.conftest import admin_key
from tests.factories.server import free_port, running_server
from voucherledger.client import Client
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "funder_integration.py"
SPEC = json.loads((ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8"))
CLAIMS_TAKE_METADATA = "metadata" in SPEC["components"]["schemas"]["RedemptionCreate"].get(
    "properties", {}
)


class Scheme:
    """A programme with one supplier and group, and the three parties' clients."""

    def __init__(self, url: str, key: str) -> None:
        with Client(url, api_key=key) as admin:
            self.funder = admin.create_account(
                body={"kind": "funder", "name": "Diaspora Development Fund", "country": "NL"}
            )
            group = admin.create_account(
                body={
                    "kind": "group",
                    "name": "Kumasi Hometown Association",
                    "group": {
                        "group_type": "hometown_association",
                        "origin_country": "GH",
                        "residence_country": "NL",
                        "women_led": True,
                    },
                }
            )
            supplier = admin.create_account(
                body={
                    "kind": "supplier",
                    "name": "Civic Skills Academy",
                    "supplier": {"service_categories": ["leadership"]},
                }
            )
            self.funder_key = admin.create_key(self.funder["id"])["key"]
            self.f = Client(url, api_key=self.funder_key)
            self.s = Client(url, api_key=admin.create_key(supplier["id"])["key"])
            self.g = Client(url, api_key=admin.create_key(group["id"])["key"])
        self.group_id, self.supplier_id = group["id"], supplier["id"]
        self.programme = self.f.create_programme(
            body={
                "name": "Capacity vouchers",
                "currency": "EUR",
                "service_categories": ["leadership"],
            }
        )["id"]
        self.f.create_deposit(self.programme, body={"amount": 1_000_000, "reference": "t1"})
        self.f.accredit_supplier(
            self.programme,
            body={"supplier_id": self.supplier_id, "service_categories": ["leadership"]},
        )
        voucher = self.f.issue_voucher(
            self.programme, body={"group_id": self.group_id, "amount": 200_000}
        )
        self.code = self.f.get_voucher(voucher["id"])["code"]

    def claim(self, amount: int, grant: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "voucher_code": self.code,
            "amount": amount,
            "service_category": "leadership",
            "description": f"Course for grant {grant}",
            "evidence": [{"kind": "attendance", "reference": "sign-in sheet"}],
        }
        if CLAIMS_TAKE_METADATA:
            body["metadata"] = {"grant_id": grant}
        result: dict[str, Any] = self.s.create_redemption(body=body)
        return result

    def close(self) -> None:
        for client in (self.f, self.s, self.g):
            client.close()


@pytest.fixture
def delivering(settings: Settings) -> Iterator[tuple[str, str]]:
    quick = settings.model_copy(
        update={
            "webhook_delivery_enabled": True,
            "webhook_allow_insecure_urls": True,
            "webhook_interval_seconds": 0.2,
            "webhook_timeout_seconds": 5.0,
        }
    )
    with running_server(quick) as url:
        yield url, admin_key(quick)


def _start_example(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(  # noqa: S603 - our own example, fixed arguments
        [sys.executable, str(EXAMPLE), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("listening on"), first + (
        process.stderr.read() if process.stderr else ""
    )
    return process


def test_the_funder_example_reconciles_claims_from_webhooks(
    delivering: tuple[str, str], tmp_path: Path
) -> None:
    url, key = delivering
    scheme = Scheme(url, key)
    try:
        before = scheme.claim(30_000, "G-1")
        scheme.g.confirm_redemption(before["id"])
        scheme.claim(10_000, "G-2")  # stays pending: held
        port = free_port()
        endpoint = scheme.f.create_webhook_endpoint(
            body={
                "url": f"http://127.0.0.1:{port}/webhooks",
                "event_types": ["*"],
                "description": "the funder's reconciliation",
            }
        )
        out = tmp_path / "claims.csv"
        process = _start_example(
            [
                *("--base-url", url, "--api-key", scheme.funder_key),
                *("--programme", scheme.programme, "--webhook-secret", endpoint["secret"]),
                *("--listen", f"127.0.0.1:{port}", "--csv", str(out), "--until-idle", "6"),
            ]
        )
        try:
            forged = httpx.post(
                f"http://127.0.0.1:{port}/webhooks",
                content=b'{"type": "redemption.captured"}',
                headers={
                    "webhook-id": "msg_forged",
                    "webhook-timestamp": str(int(time.time())),
                    "webhook-signature": "v1,AAAA",
                },
            )
            assert forged.status_code == 400
            later = scheme.claim(50_000, "G-3")
            scheme.g.confirm_redemption(later["id"])
            scheme.f.refund_redemption(
                before["id"], body={"amount": 5_000, "reason": "one day cancelled"}
            )
            voided = scheme.claim(7_000, "G-4")
            scheme.s.cancel_redemption(voided["id"])
            scheme.f.create_settlement(
                scheme.programme,
                body={"supplier_id": scheme.supplier_id, "payout_reference": "SEPA 1"},
            )
            scheme.claim(4_000, "G-5")  # pending after the settlement
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, stdout + stderr
        summary = json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))
        balances = scheme.f.get_programme(scheme.programme)["balances"]
        totals = summary["totals"]
        assert summary["balances"] == balances
        assert totals["pending_held"] == balances["held"] == 14_000
        assert totals["settled"] == balances["settled"] == 75_000
        assert totals["captured"] - totals["settled"] == balances["payable"] == 0
        assert totals["refunded"] == 5_000
        assert summary["webhooks"] > 0  # the webhooks came through, verified
        assert "OK " in stdout

        listed = {r["id"]: r for r in scheme.f.iter_list_redemptions(programme_id=scheme.programme)}
        with out.open(newline="", encoding="utf-8") as handle:
            rows = {row["id"]: row for row in csv.DictReader(handle)}
        assert set(rows) == set(listed)
        for claim_id, claim in listed.items():
            row = rows[claim_id]
            assert (row["status"], int(row["amount"]), int(row["refunded_amount"])) == (
                claim["status"],
                claim["amount"],
                claim["refunded_amount"],
            )
            assert row["supplier_id"] == claim["supplier_id"]
            assert row["voucher_id"] == claim["voucher_id"]
            assert row["settled"] == ("true" if claim["settled"] else "false")
            if CLAIMS_TAKE_METADATA:
                assert row["grant_id"] == claim["metadata"]["grant_id"]
    finally:
        scheme.close()


def _example_module() -> Any:
    spec = importlib.util.spec_from_file_location("funder_integration", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_listener_refuses_bad_signatures_and_handles_a_redelivery_once(
    tmp_path: Path,
) -> None:
    """Without a server: a fake API, and the example's listener on a free port."""
    example = _example_module()
    reads: list[str] = []
    claim = {
        "id": "red_1",
        "programme_id": "prg_1",
        "voucher_id": "vch_1",
        "supplier_id": "acc_s",
        "amount": 500,
        "refunded_amount": 0,
        "status": "captured",
        "settled": False,
        "metadata": {"grant_id": "G-17"},
    }

    def fake(request: httpx.Request) -> httpx.Response:
        reads.append(request.url.path)
        return httpx.Response(200, json=claim)

    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    api = Client("http://vl.test", transport=httpx.MockTransport(fake))
    ledger = example.Ledger(api, "prg_1", tmp_path / "claims.csv")
    server = ThreadingHTTPServer(("127.0.0.1", 0), example.make_handler(ledger, [secret]))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    payload = json.dumps(
        {"type": "redemption.captured", "programme_id": "prg_1", "data": {"object": claim}}
    )
    now = datetime.now(tz=UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_1", now, payload),
    }
    try:
        assert httpx.post(url, content=payload, headers=headers).status_code == 204
        assert httpx.post(url, content=payload, headers=headers).status_code == 204  # again
        forged = {**headers, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
        assert httpx.post(url, content=payload, headers=forged).status_code == 400
    finally:
        server.shutdown()
        server.server_close()
        api.close()
    assert reads == ["/v1/redemptions/red_1"]  # the redelivery was not handled twice
    rows = list(csv.DictReader((tmp_path / "claims.csv").open(encoding="utf-8")))
    assert [(r["id"], r["grant_id"], r["status"]) for r in rows] == [("red_1", "G-17", "captured")]
    assert ledger.totals() == {"captured": 500, "pending_held": 0, "refunded": 0, "settled": 0}
