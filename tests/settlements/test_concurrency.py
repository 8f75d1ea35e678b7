"""An approval and a rejection of one proposed settlement sent at the same time, by
two people through a running server: exactly one wins, the other answers 409
``invalid_state`` and writes nothing; money moves only if the approval won.

On PostgreSQL the supplier's payable row (which both lock first) is held by another
connection until both requests wait on it, so they truly overlap; on SQLite the
database's write lock takes them one after the other.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import psycopg

from tests.factories.app import client_for
from tests.factories.ledger import ledger_violations
from tests.factories.programmes import balances, session_factory
from tests.factories.server import pg_dsn, running_server, waiting_on_locks
from tests.factories.settlements import ApprovalWorld, approval_world, propose
from voucherledger import chart
from voucherledger.core.settings import Settings

ROUNDS = 4


def race(base_url: str, settlement_id: str, world: ApprovalWorld, hold: str | None) -> list[Any]:
    """Approve (the approver) and reject (the owner) at once; the answers, in that order."""
    results: list[Any] = [None, None]
    barrier = threading.Barrier(2)
    calls = (
        (0, world.people.approver.headers, "approve", None),
        (1, world.people.owner.headers, "reject", {"reason": "changed my mind"}),
    )

    def send(index: int, headers: dict[str, str], action: str, body: Any) -> None:
        try:
            with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
                http.get("/healthz")
                barrier.wait(timeout=30)
                response = http.post(f"/v1/settlements/{settlement_id}/{action}", json=body)
                results[index] = (response.status_code, response.json())
        except BaseException as exc:  # reported by the main thread
            results[index] = exc

    threads = [threading.Thread(target=send, args=call) for call in calls]
    blocker = psycopg.connect(hold) if hold else None
    try:
        if blocker is not None:
            payable = chart.payable(world.cast.supplier.id, world.programme_id)
            blocker.execute(
                "SELECT code FROM ledger_accounts WHERE code = %s FOR UPDATE", (payable,)
            )
        for thread in threads:
            thread.start()
        if blocker is not None and hold is not None:
            deadline = time.monotonic() + 60
            while waiting_on_locks(hold) < 2:
                assert time.monotonic() < deadline, "the two requests did not overlap"
                time.sleep(0.02)
    finally:
        if blocker is not None:
            blocker.rollback()
            blocker.close()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_concurrent_approve_and_reject_one_wins(settings: Settings) -> None:
    postgres = settings.database_url.startswith("postgresql")
    settings = settings.model_copy(update={"pool_size": 4})
    with client_for(settings) as client:
        world = approval_world(client)
        rounds = []
        for _ in range(ROUNDS):
            world.captured(100)
            made = propose(client, world.people.officer, world.programme_id, world.cast.supplier.id)
            assert made.status_code == 201, made.text
            rounds.append(made.json()["id"])
        wins = {"approve": 0, "reject": 0}
        with running_server(settings) as base_url:
            for settlement_id in rounds:
                hold = pg_dsn(settings.database_url) if postgres else None
                approved, rejected = race(base_url, settlement_id, world, hold)
                assert not isinstance(approved, BaseException), approved
                assert not isinstance(rejected, BaseException), rejected
                statuses = sorted([approved[0], rejected[0]])
                assert statuses == [200, 409], (approved, rejected)
                loser = approved if approved[0] == 409 else rejected
                assert loser[1]["code"] == "invalid_state"
                winner = "approve" if approved[0] == 200 else "reject"
                wins[winner] += 1
                final = client.get(
                    f"/v1/settlements/{settlement_id}", headers=world.cast.funder.headers
                ).json()
                assert final["status"] == ("settled" if winner == "approve" else "rejected")
        # Each approval paid its 100; each rejection left its 100 payable (free again).
        after = balances(client, world.cast.funder, world.programme_id)
        assert after["settled"] == 100 * wins["approve"]
        assert after["payable"] == 100 * wins["reject"]
        with session_factory(client)() as session:
            assert ledger_violations(session) == []
