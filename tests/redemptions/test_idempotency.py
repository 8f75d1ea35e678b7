"""``Idempotency-Key`` on the claim endpoints: a retried request is answered with the
first response and writes nothing more; the same key with another body is 409
``idempotency_key_reused`` and writes nothing; a refused request keeps no key.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.accounts import Party
from tests.factories.app import client_for
from tests.factories.programmes import assert_problem, issue, ledger_problems, session_factory
from tests.factories.redemptions import (
    claim_body,
    claim_count,
    claim_programme,
    claim_snapshot,
    decide,
    get_voucher,
    make_cast,
    payable,
)
from voucherledger.core.settings import Settings


def kinds(client: TestClient) -> dict[str, int]:
    with session_factory(client)() as session:
        rows = session.execute(text("SELECT kind, count(*) FROM ledger_transactions GROUP BY kind"))
        return {kind: int(count) for kind, count in rows}


def keyed_post(
    client: TestClient, party: Party, path: str, key: str, body: dict[str, Any] | None = None
) -> tuple[int, bytes, str]:
    response = client.post(path, headers={**party.headers, "Idempotency-Key": key}, json=body)
    return response.status_code, response.content, response.headers["content-type"]


def test_one_claim_sent_twenty_times_is_one_claim(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier, c.other_supplier))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        body = claim_body(voucher["code"], 2_500)
        before = kinds(client)

        answers = [
            keyed_post(client, c.supplier, "/v1/redemptions", "claim-0001", body) for _ in range(20)
        ]
        assert answers[0][0] == 201, answers[0][1]
        assert answers[0][2] == "application/json"
        assert all(answer == answers[0] for answer in answers), "a replay answered differently"
        assert claim_count(client) == 1
        after = kinds(client)
        assert after == {**before, "hold": before.get("hold", 0) + 1}
        shown = get_voucher(client, c.group, voucher["id"])
        assert (shown["balance"], shown["held"]) == (7_500, 2_500)

        # The same key with another amount: refused, and nothing written.
        state = claim_snapshot(client)
        for other in (
            claim_body(voucher["code"], 2_501),
            claim_body(voucher["code"], 2_500, "fundraising"),
        ):
            response = client.post(
                "/v1/redemptions",
                headers={**c.supplier.headers, "Idempotency-Key": "claim-0001"},
                json=other,
            )
            assert_problem(response, 409, "idempotency_key_reused")
        assert claim_snapshot(client) == state

        # The key is the supplier's own: another supplier's request with it is a new claim.
        status, _, _ = keyed_post(client, c.other_supplier, "/v1/redemptions", "claim-0001", body)
        assert status == 201
        assert claim_count(client) == 2
        shown = get_voucher(client, c.group, voucher["id"])
        assert (shown["balance"], shown["held"]) == (5_000, 5_000)
        assert ledger_problems(client) == []


def test_a_refused_claim_keeps_no_key(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 1_000)
        first = client.post(
            "/v1/redemptions", headers=c.supplier.headers, json=claim_body(voucher["code"], 800)
        )
        assert first.status_code == 201, first.text

        state = claim_snapshot(client)
        body = claim_body(voucher["code"], 500)
        status, content, _ = keyed_post(client, c.supplier, "/v1/redemptions", "retry-me", body)
        assert status == 409, content
        assert claim_snapshot(client) == state  # the key included

        # Once the hold is cancelled the same request, same key, succeeds.
        assert decide(client, c.supplier, first.json()["id"], "cancel").status_code == 200
        status, content, _ = keyed_post(client, c.supplier, "/v1/redemptions", "retry-me", body)
        assert status == 201, content
        again = keyed_post(client, c.supplier, "/v1/redemptions", "retry-me", body)
        assert again == (status, content, "application/json")
        assert claim_count(client) == 2


def test_decisions_refunds_and_settlements_replay(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        made = client.post(
            "/v1/redemptions", headers=c.supplier.headers, json=claim_body(voucher["code"], 3_000)
        )
        assert made.status_code == 201, made.text
        rid = made.json()["id"]
        before = kinds(client)

        confirms = [
            keyed_post(client, c.group, f"/v1/redemptions/{rid}/confirm", "confirm-1")
            for _ in range(5)
        ]
        assert confirms[0][0] == 200
        assert all(answer == confirms[0] for answer in confirms)
        # Without the key, confirming again is a new request, and an invalid one.
        assert_problem(decide(client, c.group, rid, "confirm"), 409, "invalid_state")

        refund = {"amount": 1_000, "reason": "one session cancelled"}
        refunds = [
            keyed_post(client, c.supplier, f"/v1/redemptions/{rid}/refunds", "refund-1", refund)
            for _ in range(5)
        ]
        assert refunds[0][0] == 201
        assert all(answer == refunds[0] for answer in refunds)
        assert payable(client, c.supplier.id, pid) == 2_000
        state = claim_snapshot(client)
        response = client.post(
            f"/v1/redemptions/{rid}/refunds",
            headers={**c.supplier.headers, "Idempotency-Key": "refund-1"},
            json={**refund, "amount": 999},
        )
        assert_problem(response, 409, "idempotency_key_reused")
        assert claim_snapshot(client) == state

        payout = {"supplier_id": c.supplier.id, "payout_reference": "wire 7"}
        settlements = [
            keyed_post(client, c.funder, f"/v1/programmes/{pid}/settlements", "settle-1", payout)
            for _ in range(5)
        ]
        assert settlements[0][0] == 201
        assert all(answer == settlements[0] for answer in settlements)
        assert kinds(client) == {
            **before,
            "capture": before.get("capture", 0) + 1,
            "refund": 1,
            "settle": 1,
        }
        assert payable(client, c.supplier.id, pid) == 0
        assert ledger_problems(client) == []
