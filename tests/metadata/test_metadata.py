"""``metadata`` on accounts, programmes, vouchers (single and batch), claims and
settlements: stored, returned on every read, and refused past its limits with nothing
written; and ``has_more`` on lists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import account_body
from tests.factories.app import admin_headers, client_for
from tests.factories.programmes import (
    assert_problem,
    create_programme,
    issue,
    issue_batch,
    programme_body,
    voucher_count,
)
from tests.factories.redemptions import Cast, claim, claim_programme, decide, make_cast
from voucherledger.core.settings import Settings

GRANT = {"grant_id": "G-17", "cost.centre": "north_1"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as client:
        yield client


@pytest.fixture
def cast(client: TestClient) -> Cast:
    return make_cast(client)


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def test_account_metadata_round_trip(client: TestClient) -> None:
    admin = admin_headers(client)
    made = _ok(
        client.post("/v1/accounts", headers=admin, json=account_body("funder", metadata=GRANT)),
        201,
    )
    assert made["metadata"] == GRANT
    assert _ok(client.get(f"/v1/accounts/{made['id']}", headers=admin))["metadata"] == GRANT
    plain = _ok(client.post("/v1/accounts", headers=admin, json=account_body("funder")), 201)
    assert plain["metadata"] == {}


def test_programme_metadata_round_trip(client: TestClient, cast: Cast) -> None:
    made = create_programme(client, cast.funder, metadata=GRANT)
    assert made["metadata"] == GRANT
    got = _ok(client.get(f"/v1/programmes/{made['id']}", headers=cast.funder.headers))
    assert got["metadata"] == GRANT
    listed = _ok(client.get("/v1/programmes", headers=cast.funder.headers))["data"]
    assert [p["metadata"] for p in listed if p["id"] == made["id"]] == [GRANT]


def test_voucher_metadata_single_and_batch(client: TestClient, cast: Cast) -> None:
    pid = claim_programme(client, cast, accredit_for=(cast.supplier,))["id"]
    single = issue(client, cast.manager, pid, cast.group.id, 100, metadata=GRANT)
    assert single["metadata"] == GRANT
    batch = issue_batch(
        client,
        cast.manager,
        pid,
        [
            {"group_id": cast.group.id, "amount": 50, "metadata": {"row": "1"}},
            {"group_id": cast.group.id, "amount": 60},
        ],
    )
    assert [v["metadata"] for v in batch] == [{"row": "1"}, {}]
    for made, wanted in [(single, GRANT), (batch[0], {"row": "1"}), (batch[1], {})]:
        got = _ok(client.get(f"/v1/vouchers/{made['id']}", headers=cast.manager.headers))
        assert got["metadata"] == wanted
    check = client.post(
        f"/v1/programmes/{pid}/vouchers/batch/check",
        headers=cast.manager.headers,
        json={"vouchers": [{"group_id": cast.group.id, "amount": 5, "metadata": {"k": 1}}]},
    )
    assert_problem(check, 422, "validation_error")


def test_claim_and_settlement_metadata(client: TestClient, cast: Cast) -> None:
    pid = claim_programme(client, cast, accredit_for=(cast.supplier,))["id"]
    code = issue(client, cast.manager, pid, cast.group.id, 1_000)["code"]
    made = claim(client, cast.supplier, code, 100, metadata=GRANT)
    assert made["metadata"] == GRANT
    got = _ok(client.get(f"/v1/redemptions/{made['id']}", headers=cast.supplier.headers))
    assert got["metadata"] == GRANT
    assert decide(client, cast.group, made["id"], "confirm").status_code == 200
    response = client.post(
        f"/v1/programmes/{pid}/settlements",
        headers=cast.funder.headers,
        json={"supplier_id": cast.supplier.id, "payout_reference": "wire 9", "metadata": GRANT},
    )
    settlement = _ok(response, 201)
    assert settlement["metadata"] == GRANT
    got = _ok(client.get(f"/v1/settlements/{settlement['id']}", headers=cast.funder.headers))
    assert got["metadata"] == GRANT


BAD = [
    pytest.param({f"k{i}": "v" for i in range(21)}, id="21-keys"),
    pytest.param({"k": "x" * 501}, id="501-char-value"),
    pytest.param({"bad key": "v"}, id="space-in-key"),
    pytest.param({"k" * 41: "v"}, id="41-char-key"),
    pytest.param({"": "v"}, id="empty-key"),
    pytest.param({"k": 5}, id="number-value"),
    pytest.param({"k": None}, id="null-value"),
    pytest.param({"k": "a\x00b"}, id="control-char"),
    pytest.param(["k"], id="not-an-object"),
]


@pytest.mark.parametrize("metadata", BAD)
def test_metadata_limits_refused_and_nothing_written(
    client: TestClient, cast: Cast, metadata: Any
) -> None:
    pid = claim_programme(client, cast, accredit_for=(cast.supplier,))["id"]
    before = voucher_count(client)
    assert_problem(
        client.post(
            f"/v1/programmes/{pid}/vouchers",
            headers=cast.manager.headers,
            json={"group_id": cast.group.id, "amount": 10, "metadata": metadata},
        ),
        422,
        "validation_error",
    )
    assert_problem(
        client.post(
            f"/v1/programmes/{pid}/vouchers/batch",
            headers=cast.manager.headers,
            json={
                "vouchers": [
                    {"group_id": cast.group.id, "amount": 10},
                    {"group_id": cast.group.id, "amount": 10, "metadata": metadata},
                ]
            },
        ),
        422,
        "validation_error",
    )
    assert voucher_count(client) == before
    assert_problem(
        client.post(
            "/v1/programmes",
            headers=cast.funder.headers,
            json=programme_body(metadata=metadata),
        ),
        422,
        "validation_error",
    )
    assert_problem(
        client.post(
            "/v1/accounts",
            headers=cast.admin,
            json=account_body("funder", metadata=metadata),
        ),
        422,
        "validation_error",
    )
    code = issue(client, cast.manager, pid, cast.group.id, 100)["code"]
    assert_problem(
        client.post(
            "/v1/redemptions",
            headers=cast.supplier.headers,
            json={
                "voucher_code": code,
                "amount": 10,
                "service_category": "leadership",
                "description": "Board training",
                "metadata": metadata,
            },
        ),
        422,
        "validation_error",
    )
    assert_problem(
        client.post(
            f"/v1/programmes/{pid}/settlements",
            headers=cast.funder.headers,
            json={"supplier_id": cast.supplier.id, "payout_reference": "w", "metadata": metadata},
        ),
        422,
        "validation_error",
    )


def test_twenty_keys_and_500_characters_are_allowed(client: TestClient, cast: Cast) -> None:
    wide = {f"k.{i}-_A": "x" * 500 for i in range(20)}
    assert create_programme(client, cast.funder, metadata=wide)["metadata"] == wide


def test_has_more(client: TestClient, cast: Cast) -> None:
    for _ in range(3):
        create_programme(client, cast.funder)
    first = _ok(client.get("/v1/programmes?limit=2", headers=cast.funder.headers))
    assert first["has_more"] is True
    assert first["next_cursor"] is not None
    rest = _ok(
        client.get(
            "/v1/programmes",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=cast.funder.headers,
        )
    )
    assert rest["has_more"] is False
    assert rest["next_cursor"] is None
    pid = claim_programme(client, cast)["id"]
    for _ in range(2):
        issue(client, cast.manager, pid, cast.group.id, 10)
    vouchers = _ok(client.get("/v1/vouchers?limit=1", headers=cast.manager.headers))
    assert vouchers["has_more"] is True
    vouchers = _ok(client.get("/v1/vouchers?limit=500", headers=cast.manager.headers))
    assert vouchers["has_more"] is False
    empty = _ok(client.get("/v1/redemptions", headers=cast.supplier.headers))
    assert empty == {"data": [], "next_cursor": None, "has_more": False}
    settlements = _ok(client.get("/v1/settlements", headers=cast.funder.headers))
    assert settlements["has_more"] is False
