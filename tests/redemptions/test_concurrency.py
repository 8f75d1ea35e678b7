"""Claims under real concurrency (PostgreSQL): 2 server processes, 64 clients, 5 vouchers.

Two ``uvicorn voucherledger.asgi:app`` **subprocesses** (sealer on in both) serve one
database. 64 client threads, half on each server, each with its own HTTP connection,
start together at a barrier and claim random amounts (1-150) on 5 vouchers of 1,000
until each has made its share of claims: about 19,000 asked of 5,000 there is, so most
vouchers run dry while claims on them are in flight.

Run once in a programme without group confirmation (each claim captures at once:
voucher -> supplier payable) and once in one with it (each claim places a hold:
voucher -> voucher:held). Afterwards, per voucher, the 201 answers add up to exactly
what left the voucher and never to more than its face value; every 201 has its claim
row and its ledger transaction (found by the request's ``Idempotency-Key``); every
refusal is a 409 ``insufficient_funds`` or ``voucher_exhausted`` that wrote nothing;
nothing answered 500; the ledger balances, and the seal chain both sealers wrote
verifies.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import TEST_SIGNING_KEY, fresh_database, require_postgres
from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.ledger import SIGNER, ledger_violations
from voucherledger import chart, ledger
from voucherledger.core.db import create_db_engine, create_session_factory
from voucherledger.core.settings import Settings
from voucherledger.ledger.sealer import seal_pending
from voucherledger.ledger.verify import verify_database

SERVERS = 2
CLIENTS = 64
POOL_SIZE = 8  # per server; with overflow 2 x 8 = 16 connections per server
CLAIMS_PER_CLIENT = 4
VOUCHERS = 5
FACE_VALUE = 1_000
SUPPLIERS = 4
CATEGORY = "leadership"
REFUSALS = {"insufficient_funds", "voucher_exhausted"}

# Up to 2 x 16 connections at once: one test of the group at a time (see conftest).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pg_connections")]


@dataclass(frozen=True)
class Claim:
    client: int
    key: str
    supplier_id: str
    voucher_id: str
    amount: int
    status: int
    body: dict[str, Any]


@dataclass
class World:
    database_url: str
    base_urls: list[str]
    suppliers: list[tuple[str, dict[str, str]]]  # (account id, auth headers)
    # mode ("capture" or "hold") -> [(voucher id, code)]
    vouchers: dict[str, list[tuple[str, str]]]


# --- the servers ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(database_url: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VOUCHERLEDGER_DATABASE_URL": database_url,
        "VOUCHERLEDGER_SIGNING_KEY": TEST_SIGNING_KEY,
        "VOUCHERLEDGER_SEALER_ENABLED": "true",
        # 16 connections per server at most (pool and as many again as overflow): 32
        # claims in flight in the database at once, 32 clients per server queueing for them.
        "VOUCHERLEDGER_POOL_SIZE": str(POOL_SIZE),
        "VOUCHERLEDGER_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "uvicorn",
            "voucherledger.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=workdir,
        env=env,
    )


def _wait_ready(server: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert server.poll() is None, f"the server at {base_url} exited with {server.returncode}"
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the server at {base_url} did not get ready"
        time.sleep(0.1)


def _stop(servers: list[subprocess.Popen[bytes]]) -> None:
    for server in servers:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
    for server in servers:
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


# --- the world: parties, two programmes, 2 x 5 vouchers, the servers ----------------


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    require_postgres()
    tmp = tmp_path_factory.mktemp("claims_concurrency")
    database_url = fresh_database("postgresql", request, tmp)
    settings = Settings(
        database_url=database_url,
        signing_key=TEST_SIGNING_KEY,
        signing_key_file=tmp / "unused-key",
        sealer_enabled=False,
        sweep_enabled=False,  # tests sweep when they mean to
        pool_size=2,
        log_level="WARNING",
    )
    suppliers: list[tuple[str, dict[str, str]]] = []
    vouchers: dict[str, list[tuple[str, str]]] = {}
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        group = make_party(client, admin, "group")
        for _ in range(SUPPLIERS):
            supplier = make_party(client, admin, "supplier")
            suppliers.append((supplier.id, supplier.headers))
        for mode, confirm in (("capture", False), ("hold", True)):
            created = client.post(
                "/v1/programmes",
                headers=funder.headers,
                json={
                    "name": f"Contested claims ({mode})",
                    "currency": "EUR",
                    "service_categories": [CATEGORY],
                    "rules": {"requires_group_confirmation": confirm},
                },
            )
            assert created.status_code == 201, created.text
            programme_id = created.json()["id"]
            funded = client.post(
                f"/v1/programmes/{programme_id}/deposits",
                headers=funder.headers,
                json={"amount": VOUCHERS * FACE_VALUE, "reference": "grant"},
            )
            assert funded.status_code == 201, funded.text
            for supplier_id, _headers in suppliers:
                accredited = client.post(
                    f"/v1/programmes/{programme_id}/accreditations",
                    headers=funder.headers,
                    json={"supplier_id": supplier_id, "service_categories": [CATEGORY]},
                )
                assert accredited.status_code == 201, accredited.text
            issued = client.post(
                f"/v1/programmes/{programme_id}/vouchers/batch",
                headers=funder.headers,
                json={
                    "vouchers": [
                        {"group_id": group.id, "amount": FACE_VALUE} for _ in range(VOUCHERS)
                    ]
                },
            )
            assert issued.status_code == 201, issued.text
            vouchers[mode] = [(v["id"], v["code"]) for v in issued.json()["data"]]

    servers: list[subprocess.Popen[bytes]] = []
    try:
        base_urls = []
        for _ in range(SERVERS):
            port = _free_port()
            servers.append(_start(database_url, port, tmp))
            base_urls.append(f"http://127.0.0.1:{port}")
        for server, base_url in zip(servers, base_urls, strict=True):
            _wait_ready(server, base_url)
        yield World(database_url, base_urls, suppliers, vouchers)
    finally:
        _stop(servers)


# --- the race ---------------------------------------------------------------------------


def claim_concurrently(world: World, mode: str) -> list[Claim]:
    targets = world.vouchers[mode]
    claims: list[Claim] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)

    def client(index: int) -> None:
        rng = random.Random(f"{mode}-{index}")
        supplier_id, headers = world.suppliers[index % SUPPLIERS]
        base_url = world.base_urls[index % SERVERS]
        try:
            with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
                assert http.get("/healthz").status_code == 200  # connect before the barrier
                barrier.wait(timeout=30)
                for n in range(CLAIMS_PER_CLIENT):
                    voucher_id, code = rng.choice(targets)
                    amount = rng.randint(1, 150)
                    key = f"{mode}-{index}-{n}"
                    response = http.post(
                        "/v1/redemptions",
                        headers={"Idempotency-Key": key},
                        json={
                            "voucher_code": code,
                            "amount": amount,
                            "service_category": CATEGORY,
                            "description": "Coaching session",
                            "evidence": [{"kind": "invoice", "reference": f"INV-{key}"}],
                        },
                    )
                    with lock:
                        claims.append(
                            Claim(
                                index,
                                key,
                                supplier_id,
                                voucher_id,
                                amount,
                                response.status_code,
                                response.json(),
                            )
                        )
        except BaseException as exc:  # reported by the main thread
            with lock:
                failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    assert not failures, failures
    assert len(claims) == CLIENTS * CLAIMS_PER_CLIENT
    return claims


@pytest.mark.parametrize("mode", ["capture", "hold"])
def test_64_clients_on_2_servers_never_overspend_a_voucher(world: World, mode: str) -> None:
    claims = claim_concurrently(world, mode)

    # Every answer is a 201 or a 409 refusal for want of value; nothing else, no 500.
    unexpected = [
        (c.status, c.body)
        for c in claims
        if c.status != 201 and not (c.status == 409 and c.body.get("code") in REFUSALS)
    ]
    assert unexpected == []
    accepted = [c for c in claims if c.status == 201]
    refused = [c for c in claims if c.status == 409]
    # The race was real: value ran out while claims were being made.
    assert accepted
    assert refused
    want = "pending" if mode == "hold" else "captured"
    for c in accepted:
        assert (c.body["voucher_id"], c.body["amount"], c.body["status"]) == (
            c.voucher_id,
            c.amount,
            want,
        )

    engine = create_db_engine(world.database_url, pool_size=1)
    try:
        with create_session_factory(engine)() as session:
            spent: dict[str, int] = defaultdict(int)
            for c in accepted:
                spent[c.voucher_id] += c.amount
            for voucher_id, _code in world.vouchers[mode]:
                left = ledger.balance(session, chart.voucher(voucher_id))
                # Never over-spent, and the 201s are exactly what left the voucher.
                assert spent[voucher_id] <= FACE_VALUE
                assert spent[voucher_id] == FACE_VALUE - left, voucher_id
                held = ledger.balance(session, chart.held(voucher_id))
                assert held == (spent[voucher_id] if mode == "hold" else 0)
                status = session.execute(
                    text("SELECT status FROM vouchers WHERE id = :id"), {"id": voucher_id}
                ).scalar_one()
                assert status == ("exhausted" if left == 0 else "active")
            if mode == "capture":
                for supplier_id, _headers in world.suppliers:
                    programme_id = accepted[0].body["programme_id"]
                    payable = ledger.balance(session, chart.payable(supplier_id, programme_id))
                    assert payable == sum(
                        c.amount for c in accepted if c.supplier_id == supplier_id
                    )

            # Every 201 is in the journal: its claim row, and its ledger transaction
            # (written under the request's Idempotency-Key) moving its amount off the
            # voucher; no refused request left a trace.
            rows = {
                row.id: row
                for row in session.execute(
                    text(
                        "SELECT id, voucher_id, supplier_id, amount, status FROM redemptions "
                        "WHERE id = ANY(:ids)"
                    ),
                    {"ids": [c.body["id"] for c in accepted]},
                )
            }
            kind = "hold" if mode == "hold" else "capture"
            for c in accepted:
                row = rows[c.body["id"]]
                assert (row.voucher_id, row.supplier_id, row.amount, row.status) == (
                    c.voucher_id,
                    c.supplier_id,
                    c.amount,
                    want,
                )
                legs = session.execute(
                    text(
                        "SELECT t.kind, p.account_code, p.amount FROM ledger_transactions t "
                        "JOIN ledger_postings p ON p.transaction_id = t.id "
                        "WHERE t.idempotency_key = :key ORDER BY p.amount"
                    ),
                    {"key": f"http:{c.supplier_id}:{c.key}"},
                ).all()
                assert [tuple(leg) for leg in legs] == [
                    (kind, chart.voucher(c.voucher_id), -c.amount),
                    (
                        kind,
                        chart.held(c.voucher_id)
                        if mode == "hold"
                        else chart.payable(c.supplier_id, c.body["programme_id"]),
                        c.amount,
                    ),
                ]
            traces = session.execute(
                text("SELECT count(*) FROM ledger_transactions WHERE idempotency_key = ANY(:keys)"),
                {"keys": [f"http:{c.supplier_id}:{c.key}" for c in refused]},
            ).scalar_one()
            assert traces == 0
            claimed = session.execute(
                text(
                    "SELECT count(*) FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id "
                    "WHERE v.id = ANY(:ids)"
                ),
                {"ids": [voucher_id for voucher_id, _code in world.vouchers[mode]]},
            ).scalar_one()
            assert claimed == len(accepted)

            assert ledger_violations(session) == []
            assert ledger.trial_balance(session).totals == {"EUR": 0}
            # Both servers' sealers took turns on the chain; seal the rest and verify it.
            session.rollback()
        seal_pending(create_session_factory(engine), SIGNER)
        with create_session_factory(engine)() as session:
            verified = verify_database(session, public_key=SIGNER.public_key_hex)
            assert verified.ok, verified.error
    finally:
        engine.dispose()
