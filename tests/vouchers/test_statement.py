"""``GET /v1/vouchers/{id}/statement``: every movement of a voucher's value, from its
ledger postings, oldest first, with the running balance; paginated; for whoever may
read the voucher."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories.app import client_for
from tests.factories.programmes import assert_problem, issue
from tests.factories.redemptions import (
    claim,
    claim_programme,
    decide,
    get_voucher,
    make_cast,
    refund,
)
from voucherledger.core.settings import Settings


def statement(
    client: TestClient, headers: dict[str, str], voucher_id: str, **query: Any
) -> dict[str, Any]:
    response = client.get(f"/v1/vouchers/{voucher_id}/statement", headers=headers, params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_voucher_s_life_as_a_statement(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        other = issue(client, c.manager, pid, c.group.id, 5_000)  # not in this statement
        kept = claim(client, c.supplier, voucher["code"], 3_000)
        assert decide(client, c.group, kept["id"], "confirm").status_code == 200
        dropped = claim(client, c.supplier, voucher["code"], 2_000)
        assert decide(client, c.group, dropped["id"], "reject").status_code == 200
        assert refund(client, c.supplier, kept["id"], 500).status_code == 201
        claim(client, c.supplier, other["code"], 1_000)
        revoked = client.post(
            f"/v1/vouchers/{voucher['id']}/revoke", headers=c.funder.headers, json={"reason": "x"}
        )
        assert revoked.status_code == 200, revoked.text

        body = statement(client, c.group.headers, voucher["id"])
        assert (body["voucher_id"], body["currency"], body["next_cursor"]) == (
            voucher["id"],
            "EUR",
            None,
        )
        lines = [
            (
                line["kind"],
                line["amount"],
                line["held_delta"],
                line["balance_after"],
                line["redemption_id"],
            )
            for line in body["data"]
        ]
        assert lines == [
            ("issue", 10_000, None, 10_000, None),
            ("hold", -3_000, 3_000, 7_000, kept["id"]),
            ("capture", 0, -3_000, 7_000, kept["id"]),
            ("hold", -2_000, 2_000, 5_000, dropped["id"]),
            ("void", 2_000, -2_000, 7_000, dropped["id"]),
            ("refund", 500, None, 7_500, kept["id"]),
            ("revoke", -7_500, None, 0, None),
        ]
        times = [line["occurred_at"] for line in body["data"]]
        assert times == sorted(times)
        assert body["data"][1]["description"] == "Two-day board training"  # the claim's
        assert body["data"][2]["description"] == "Claim confirmed"
        assert body["data"][0]["description"] == "Issued"
        # The last line agrees with the voucher itself.
        shown = get_voucher(client, c.group, voucher["id"])
        assert (shown["balance"], shown["held"]) == (0, 0)

        # Pages of two, put together, are the whole statement.
        pages: list[dict[str, Any]] = []
        cursor = None
        while True:
            query: dict[str, Any] = {"limit": 2}
            if cursor:
                query["cursor"] = cursor
            page = statement(client, c.funder.headers, voucher["id"], **query)
            pages.extend(page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == body["data"]


def test_who_reads_a_statement(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 1_000)
        for party in (c.group, c.funder, c.manager, c.auditor):
            assert len(statement(client, party.headers, voucher["id"])["data"]) == 1
        path = f"/v1/vouchers/{voucher['id']}/statement"
        for party in (c.other_group, c.other_funder):
            assert_problem(client.get(path, headers=party.headers), 404, "not_found")
        assert_problem(client.get(path, headers=c.supplier.headers), 403, "forbidden")
        unknown = "/v1/vouchers/vch_00000000000000000000000000/statement"
        assert_problem(client.get(unknown, headers=c.funder.headers), 404, "not_found")
        bad = client.get(path, headers=c.group.headers, params={"cursor": "dHhuX25vbmU"})
        assert_problem(bad, 422, "validation_error")
