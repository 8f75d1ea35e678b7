"""A funder's integration with voucherledger: receive webhooks, reconcile claims into a CSV.

What a funder's developer would write on top of ``voucherledger.client``:

* an HTTP listener for webhooks; each one is verified (Standard Webhooks signature,
  ``voucherledger.client.webhooks.verify``) and refused with 400 if it does not check
  out; deliveries are at least once, so each ``webhook-id`` is handled once;
* at start, a catch-up over every claim of the programme (``iter_list_redemptions``),
  then on every ``redemption.*`` (and ``settlement.*``) event the claims concerned are
  read again with the client and their rows rewritten in the CSV;
* at the end, the totals of the CSV (captured, pending held, refunded, settled) next to
  the programme's balances from ``get_programme``; exit status 1 if they differ.

    python examples/funder_integration.py --base-url https://vl.example.org \\
        --api-key "$FUNDER_KEY" --programme prg_... --webhook-secret whsec_... \\
        --listen 0.0.0.0:8765 --csv claims.csv --until-idle 60
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from voucherledger.client import Client, ProblemError
from voucherledger.client.webhooks import WebhookVerificationError, verify

COLUMNS = [
    "id",
    "voucher_id",
    "supplier_id",
    "group_id",
    "amount",
    "refunded_amount",
    "currency",
    "status",
    "settled",
    "service_category",
    "created_at",
    "grant_id",
    "metadata",
]
MAX_BODY = 1_000_000


class Ledger:
    """The funder's own copy of the programme's claims, one CSV row per claim."""

    def __init__(self, api: Client, programme_id: str, path: Path) -> None:
        self.api = api
        self.programme_id = programme_id
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.last_activity = time.monotonic()

    def catch_up(self) -> None:
        """Every claim of the programme, read again (at start, and before the totals)."""
        claims = list(self.api.iter_list_redemptions(programme_id=self.programme_id))
        with self.lock:
            for claim in claims:
                self.rows[claim["id"]] = _row(claim)
            self._write()

    def refresh(self, redemption_ids: Iterable[str]) -> None:
        """The rows of these claims, from the API (an event's copy may be stale)."""
        fresh = []
        for redemption_id in redemption_ids:
            claim = self.api.get_redemption(redemption_id)
            if claim.get("programme_id") == self.programme_id:
                fresh.append(claim)
        with self.lock:
            for claim in fresh:
                self.rows[claim["id"]] = _row(claim)
            self._write()

    def handle(self, webhook_id: str, event: dict[str, Any]) -> None:
        """One verified event; a webhook-id seen before is a redelivery and is skipped."""
        with self.lock:
            if webhook_id in self.seen:
                return
            self.seen.add(webhook_id)
            self.last_activity = time.monotonic()
        kind = str(event.get("type", ""))
        obj = (event.get("data") or {}).get("object") or {}
        if event.get("programme_id") not in (None, self.programme_id):
            return
        if kind.startswith("redemption."):
            redemption_id = obj.get("redemption_id") or obj.get("id")
            if redemption_id:
                self.refresh([redemption_id])
        elif kind.startswith("settlement."):
            self.refresh(obj.get("redemption_ids") or [])

    def _write(self) -> None:
        directory = self.path.parent if str(self.path.parent) else Path()
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".claims-", suffix=".csv")
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            for key in sorted(self.rows):
                writer.writerow(self.rows[key])
        os.replace(temporary, self.path)

    def totals(self) -> dict[str, int]:
        """Captured (net of refunds), pending held, refunded and settled, from the rows."""
        out = {"captured": 0, "pending_held": 0, "refunded": 0, "settled": 0}
        with self.lock:
            for row in self.rows.values():
                amount, refunded = int(row["amount"]), int(row["refunded_amount"])
                out["refunded"] += refunded
                if row["status"] == "pending":
                    out["pending_held"] += amount
                elif row["status"] == "captured":
                    out["captured"] += amount - refunded
                    if row["settled"] == "true":
                        out["settled"] += amount - refunded
        return out


def _row(claim: dict[str, Any]) -> dict[str, Any]:
    metadata = claim.get("metadata") or {}
    return {
        "id": claim["id"],
        "voucher_id": claim.get("voucher_id", ""),
        "supplier_id": claim.get("supplier_id", ""),
        "group_id": claim.get("group_id", ""),
        "amount": int(claim.get("amount", 0)),
        "refunded_amount": int(claim.get("refunded_amount", 0)),
        "currency": claim.get("currency", ""),
        "status": claim.get("status", ""),
        "settled": "true" if claim.get("settled") else "false",
        "service_category": claim.get("service_category", ""),
        "created_at": claim.get("created_at", ""),
        "grant_id": metadata.get("grant_id", ""),
        "metadata": json.dumps(metadata, sort_keys=True),
    }


def make_handler(ledger: Ledger, secrets: Sequence[str]) -> type[BaseHTTPRequestHandler]:
    class WebhookHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, "too large")
                return
            payload = self.rfile.read(length)
            headers = dict(self.headers.items())
            try:
                event = verify(payload, headers, list(secrets))
            except WebhookVerificationError as error:
                self._answer(400, f"bad signature: {error}")
                return
            try:
                ledger.handle(str(self.headers.get("webhook-id")), event)
            except ProblemError as error:
                # Not ours to fix now: answer 500 so the server retries later.
                self._answer(500, f"could not reconcile: {error.code}")
                return
            self._answer(204, "")

        def _answer(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the totals are the output

    return WebhookHandler


def compare(totals: dict[str, int], balances: dict[str, Any]) -> list[str]:
    """What differs between the CSV's totals and the programme's balances."""
    pairs = [
        ("pending_held", totals["pending_held"], "held", int(balances["held"])),
        (
            "captured - settled",
            totals["captured"] - totals["settled"],
            "payable",
            int(balances["payable"]),
        ),
        ("settled", totals["settled"], "settled", int(balances["settled"])),
    ]
    return [f"{mine}={a} but {theirs}={b}" for mine, a, theirs, b in pairs if a != b]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Reconcile a programme's claims from webhooks.")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True, help="the funder's API key")
    parser.add_argument("--programme", required=True, help="prg_...")
    parser.add_argument(
        "--webhook-secret",
        required=True,
        action="append",
        help="whsec_... (repeat during a rotation: either is accepted)",
    )
    parser.add_argument("--listen", default="127.0.0.1:8765", help="host:port for webhooks")
    parser.add_argument("--csv", default="claims.csv", type=Path)
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=float, help="stop after this many seconds")
    stop.add_argument(
        "--until-idle", type=float, help="stop once no webhook came for this many seconds"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    with Client(args.base_url, api_key=args.api_key) as api:
        ledger = Ledger(api, args.programme, args.csv)
        server = ThreadingHTTPServer(
            (host or "127.0.0.1", int(port)), make_handler(ledger, args.webhook_secret)
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        ledger.catch_up()
        print(f"listening on http://{host}:{server.server_address[1]}", flush=True)
        started = time.monotonic()
        try:
            while True:
                time.sleep(0.2)
                now = time.monotonic()
                if args.duration is not None and now - started >= args.duration:
                    break
                if args.until_idle is not None and now - ledger.last_activity >= args.until_idle:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            server.server_close()
        ledger.catch_up()  # anything whose webhook is still on its way
        totals = ledger.totals()
        balances = api.get_programme(args.programme)["balances"]
    print(
        "totals: "
        + " ".join(f"{key}={value}" for key, value in totals.items())
        + f" (rows={len(ledger.rows)}, webhooks={len(ledger.seen)})"
    )
    print("balances: " + " ".join(f"{key}={value}" for key, value in balances.items()))
    print(json.dumps({"totals": totals, "balances": balances, "webhooks": len(ledger.seen)}))
    differences = compare(totals, balances)
    if differences:
        print("MISMATCH " + "; ".join(differences), file=sys.stderr)
        return 1
    print("OK the CSV's totals equal the programme's balances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
