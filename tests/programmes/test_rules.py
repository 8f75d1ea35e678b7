"""Every rule of programmes, deposits, accreditation and issuance, refused with its
code — and nothing written: the journal, every ledger balance and the rows of
programmes, accreditations and vouchers are as they were.

One world per backend serves the whole module; the refusals leave it as it was,
and the tests that write make their own programme.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import BACKENDS
from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers
from tests.factories.programmes import (
    assert_problem,
    balances,
    client_on,
    create_programme,
    funded_programme,
    issue,
    programme_body,
    snapshot,
    voucher_item,
)
from voucherledger.vouchers.schemas import MAX_BATCH

ENDS_IN_DAYS = 200


@dataclass
class World:
    client: TestClient
    funder: Party
    other_funder: Party
    manager: Party
    auditor: Party
    eligible: Party  # hometown association from GH, not women-led
    women_led: Party  # women's group from NG
    wrong_type: Party  # political group from GH
    wrong_origin: Party  # hometown association from FR
    batch_group: Party  # eligible, used only by the big batch
    supplier: Party  # offers leadership, fundraising, marketing
    programme: dict[str, Any]  # with every rule set; 100,000 deposited

    @property
    def pid(self) -> str:
        return str(self.programme["id"])

    def post(self, path: str, party: Party | None = None, **body: Any) -> httpx.Response:
        response: httpx.Response = self.client.post(
            path, headers=(party or self.funder).headers, json=body
        )
        return response

    def refused(
        self, response: httpx.Response, status: int, code: str, before: object
    ) -> dict[str, Any]:
        problem = assert_problem(response, status, code)
        assert snapshot(self.client) == before, "a refused request wrote something"
        return problem


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with client_on(str(request.param), request, tmp_path_factory.mktemp("rules")) as client:
        admin = admin_headers(client)

        def group(kind: str, origin: str, women_led: bool = False) -> Party:
            profile = {"group_type": kind, "origin_country": origin, "women_led": women_led}
            return make_party(client, admin, "group", group=profile)

        funder = make_party(client, admin, "funder")
        manager = make_party(client, admin, "manager")
        auditor = make_party(client, admin, "auditor")
        programme = funded_programme(
            client,
            funder,
            100_000,
            rules={
                "eligible_group_types": ["hometown_association", "womens_group"],
                "eligible_origin_countries": ["GH", "NG"],
                "max_voucher_amount": 10_000,
                "max_total_per_group": 15_000,
                "women_led_reserve_pct": 30,
            },
            manager_ids=[manager.id],
            auditor_ids=[auditor.id],
            ends_at=(datetime.now(UTC) + timedelta(days=ENDS_IN_DAYS)).isoformat(),
        )
        yield World(
            client=client,
            funder=funder,
            other_funder=make_party(client, admin, "funder"),
            manager=manager,
            auditor=auditor,
            eligible=group("hometown_association", "GH"),
            women_led=group("womens_group", "NG", women_led=True),
            wrong_type=group("political_group", "GH"),
            wrong_origin=group("hometown_association", "FR"),
            batch_group=group("womens_group", "GH"),
            supplier=make_party(
                client,
                admin,
                "supplier",
                supplier={"service_categories": ["leadership", "fundraising", "marketing"]},
            ),
            programme=programme,
        )


# --- programmes ----------------------------------------------------------------------

BAD_PROGRAMMES: dict[str, dict[str, Any]] = {
    "unknown group type": {"rules": {"eligible_group_types": ["book_club"]}},
    "empty group types": {"rules": {"eligible_group_types": []}},
    "repeated group type": {"rules": {"eligible_group_types": ["youth_group", "youth_group"]}},
    "unknown country": {"rules": {"eligible_origin_countries": ["XX"]}},
    "lower-case country": {"rules": {"eligible_origin_countries": ["gh"]}},
    "alpha-3 country": {"rules": {"eligible_origin_countries": ["GHA"]}},
    "unknown category": {"service_categories": ["leadership", "basket_weaving"]},
    "no categories": {"service_categories": []},
    "repeated category": {"service_categories": ["leadership", "leadership"]},
    "unknown rule": {"rules": {"max_vouchers": 3}},
    "reserve above 100": {"rules": {"women_led_reserve_pct": 101}},
    "negative reserve": {"rules": {"women_led_reserve_pct": -1}},
    "float reserve": {"rules": {"women_led_reserve_pct": 30.0}},
    "float max voucher": {"rules": {"max_voucher_amount": 100.5}},
    "zero max voucher": {"rules": {"max_voucher_amount": 0}},
    "string per-group cap": {"rules": {"max_total_per_group": "1000"}},
    "zero validity": {"rules": {"voucher_validity_days": 0}},
    "unknown currency": {"currency": "ABC"},
    "metal currency": {"currency": "XAU"},
    "no name": {"name": "  "},
    "naive ends_at": {"ends_at": "2999-01-01T00:00:00"},
    "ends_at in the past": {"ends_at": "2020-01-01T00:00:00Z"},
    "manager is a group": {"manager_ids": ["<eligible>"]},
    "auditor is unknown": {"auditor_ids": ["acc_01ARZ3NDEKTSV4RRFFQ69G5FAV"]},
    "both manager and auditor": {"manager_ids": ["<manager>"], "auditor_ids": ["<manager>"]},
}


def test_bad_programmes_are_422_and_create_nothing(world: World) -> None:
    ids = {"<eligible>": world.eligible.id, "<manager>": world.manager.id}
    before = snapshot(world.client)
    wrong = []
    for name, overrides in BAD_PROGRAMMES.items():
        body = programme_body(**overrides)
        for key in ("manager_ids", "auditor_ids"):
            body[key] = [ids.get(v, v) for v in body.get(key, [])]
        response = world.client.post("/v1/programmes", headers=world.funder.headers, json=body)
        if (response.status_code, response.json().get("code")) != (422, "validation_error"):
            wrong.append(f"{name}: {response.status_code} {response.text}")
    assert wrong == []
    assert snapshot(world.client) == before


# --- money in ------------------------------------------------------------------------

BAD_AMOUNTS: list[Any] = [10.0, 10.5, 0, -5, "100", True, None, 2**63, [1]]


def test_bad_amounts_are_422_everywhere(world: World) -> None:
    before = snapshot(world.client)
    wrong = []
    for amount in BAD_AMOUNTS:
        calls = {
            "deposit": world.post(
                f"/v1/programmes/{world.pid}/deposits", amount=amount, reference="r"
            ),
            "voucher": world.post(
                f"/v1/programmes/{world.pid}/vouchers", group_id=world.eligible.id, amount=amount
            ),
            "batch": world.post(
                f"/v1/programmes/{world.pid}/vouchers/batch",
                vouchers=[
                    voucher_item(world.eligible.id, 100),
                    {"group_id": world.eligible.id, "amount": amount},
                ],
            ),
        }
        for where, response in calls.items():
            body = response.json()
            if (response.status_code, body.get("code")) != (422, "validation_error"):
                wrong.append(f"{where} {amount!r}: {response.status_code} {response.text}")
            elif where == "batch" and ["body", "vouchers", "1", "amount"] not in [
                e["loc"][:4] for e in body["errors"]
            ]:
                wrong.append(f"batch {amount!r}: the bad item is not named: {body['errors']}")
    assert wrong == []
    assert snapshot(world.client) == before


def test_deposits_refused(world: World) -> None:
    before = snapshot(world.client)
    path = f"/v1/programmes/{world.pid}/deposits"
    # Another funder's programme does not exist for this one; a manager may not deposit.
    world.refused(
        world.post(path, world.other_funder, amount=100, reference="r"), 404, "not_found", before
    )
    world.refused(
        world.post(path, world.manager, amount=100, reference="r"), 403, "forbidden", before
    )
    world.refused(world.post(path, amount=100), 422, "validation_error", before)
    world.refused(world.post(path, amount=100, reference=" "), 422, "validation_error", before)
    world.refused(
        world.post(path, amount=100, reference="r", currency="USD"), 422, "validation_error", before
    )
    world.refused(
        world.post(
            "/v1/programmes/prg_01ARZ3NDEKTSV4RRFFQ69G5FAV/deposits", amount=1, reference="r"
        ),
        404,
        "not_found",
        before,
    )


# --- accreditation -------------------------------------------------------------------


def test_accreditation_refused(world: World) -> None:
    path = f"/v1/programmes/{world.pid}/accreditations"
    before = snapshot(world.client)
    cases: list[tuple[Party, dict[str, Any], int, str]] = [
        # The supplier offers marketing; the programme does not fund it.
        (
            world.manager,
            {"service_categories": ["leadership", "marketing"]},
            422,
            "category_not_allowed",
        ),
        # The programme funds governance; the supplier does not offer it.
        (world.funder, {"service_categories": ["governance"]}, 422, "category_not_allowed"),
        (world.funder, {"service_categories": []}, 422, "validation_error"),
        (world.funder, {"service_categories": ["cooking"]}, 422, "validation_error"),
        (world.funder, {"supplier_id": world.eligible.id}, 422, "validation_error"),
        (world.funder, {"supplier_id": "acc_01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 422, "validation_error"),
        (world.other_funder, {}, 404, "not_found"),
        (world.auditor, {}, 403, "forbidden"),
    ]
    for party, overrides, status, code in cases:
        body = {"supplier_id": world.supplier.id, "service_categories": ["leadership"], **overrides}
        world.refused(world.post(path, party, **body), status, code, before)
    # Suspending a supplier that was never accredited is 404.
    response = world.client.delete(f"{path}/{world.supplier.id}", headers=world.manager.headers)
    world.refused(response, 404, "not_found", before)


# --- issuance ------------------------------------------------------------------------


def test_issuance_rules_refused(world: World) -> None:
    path = f"/v1/programmes/{world.pid}/vouchers"
    now = datetime.now(UTC)
    ends_at = datetime.fromisoformat(world.programme["ends_at"])
    cases: dict[str, tuple[dict[str, Any], int, str]] = {
        "type not eligible": (voucher_item(world.wrong_type.id, 100), 422, "group_not_eligible"),
        "origin not eligible": (
            voucher_item(world.wrong_origin.id, 100),
            422,
            "group_not_eligible",
        ),
        "above max_voucher_amount": (
            voucher_item(world.eligible.id, 10_001),
            422,
            "limit_exceeded",
        ),
        "category outside the programme": (
            voucher_item(world.eligible.id, 100, service_categories=["leadership", "marketing"]),
            422,
            "category_not_allowed",
        ),
        "unknown category": (
            voucher_item(world.eligible.id, 100, service_categories=["cooking"]),
            422,
            "validation_error",
        ),
        "no categories": (
            voucher_item(world.eligible.id, 100, service_categories=[]),
            422,
            "validation_error",
        ),
        "expires_at in the past": (
            voucher_item(
                world.eligible.id, 100, expires_at=(now - timedelta(minutes=1)).isoformat()
            ),
            422,
            "validation_error",
        ),
        "expires_at after ends_at": (
            voucher_item(
                world.eligible.id, 100, expires_at=(ends_at + timedelta(seconds=1)).isoformat()
            ),
            422,
            "validation_error",
        ),
        "naive expires_at": (
            voucher_item(world.eligible.id, 100, expires_at="2030-01-01T00:00:00"),
            422,
            "validation_error",
        ),
        "group_id of a supplier": (voucher_item(world.supplier.id, 100), 422, "validation_error"),
        "group_id of a funder": (voucher_item(world.funder.id, 100), 422, "validation_error"),
        "unknown group_id": (
            voucher_item("acc_01ARZ3NDEKTSV4RRFFQ69G5FAV", 100),
            422,
            "validation_error",
        ),
        "unknown field": (voucher_item(world.eligible.id, 100, note="hi"), 422, "validation_error"),
    }
    before = snapshot(world.client)
    wrong = []
    for name, (item, status, code) in cases.items():
        for how, response in (
            ("single", world.client.post(path, headers=world.manager.headers, json=item)),
            (
                "batch",
                world.client.post(
                    f"{path}/batch",
                    headers=world.funder.headers,
                    json={"vouchers": [voucher_item(world.eligible.id, 100), item]},
                ),
            ),
        ):
            body = response.json()
            if (response.status_code, body.get("code")) != (status, code):
                wrong.append(f"{name} ({how}): {response.status_code} {response.text}")
            elif (
                how == "batch"
                and code != "validation_error"
                and body["errors"]
                != [{"index": 1, "code": code, "detail": body["errors"][0]["detail"]}]
            ):
                wrong.append(f"{name} (batch): errors {body['errors']}")
    assert wrong == []
    assert snapshot(world.client) == before


def test_the_per_group_cap_counts_every_voucher_of_the_group(world: World) -> None:
    client = world.client
    programme = funded_programme(
        client,
        world.funder,
        50_000,
        rules={"max_voucher_amount": 10_000, "max_total_per_group": 15_000},
        manager_ids=[world.manager.id],
    )
    pid = programme["id"]
    path = f"/v1/programmes/{pid}/vouchers"
    issue(client, world.manager, pid, world.eligible.id, 10_000)
    issue(client, world.funder, pid, world.eligible.id, 4_999)
    before = snapshot(client)
    # 14,999 issued: one more cent is allowed, two are not.
    world.refused(
        world.post(path, world.manager, **voucher_item(world.eligible.id, 2)),
        422,
        "limit_exceeded",
        before,
    )
    # Within one batch too: each item counts what the earlier items issued.
    problem = world.refused(
        world.post(
            f"{path}/batch",
            vouchers=[
                voucher_item(world.women_led.id, 10_000),
                voucher_item(world.eligible.id, 1),
                voucher_item(world.women_led.id, 5_000),
                voucher_item(world.women_led.id, 1),
            ],
        ),
        422,
        "limit_exceeded",
        before,
    )
    assert [e["index"] for e in problem["errors"]] == [3]
    # A revoked voucher still counts against the cap: the cap is on what was issued.
    first = client.get("/v1/vouchers", headers=world.funder.headers, params={"programme_id": pid})
    revoke = client.post(
        f"/v1/vouchers/{first.json()['data'][0]['id']}/revoke",
        headers=world.funder.headers,
        json={"reason": "mistake"},
    )
    assert revoke.status_code == 200
    before = snapshot(client)
    world.refused(
        world.post(path, **voucher_item(world.eligible.id, 2)), 422, "limit_exceeded", before
    )
    issue(client, world.funder, pid, world.eligible.id, 1)
    # Other programmes do not count.
    issue(client, world.funder, world.pid, world.eligible.id, 1_000)


def test_the_budget_is_never_overcommitted(world: World) -> None:
    client = world.client
    # 5,000 deposited: 3,500 unissued and 1,500 in the women-led reserve.
    programme = funded_programme(client, world.funder, 5_000, rules={"women_led_reserve_pct": 30})
    pid = programme["id"]
    path = f"/v1/programmes/{pid}/vouchers"
    before = snapshot(client)
    # A group not led by women cannot reach into the reserve ...
    world.refused(
        world.post(path, **voucher_item(world.eligible.id, 3_501)),
        409,
        "insufficient_funds",
        before,
    )
    # ... a women-led group can, but not past both.
    world.refused(
        world.post(path, **voucher_item(world.women_led.id, 5_001)),
        409,
        "insufficient_funds",
        before,
    )
    # Items of a batch add up: each alone fits, together they do not.
    problem = world.refused(
        world.post(
            f"{path}/batch",
            vouchers=[
                voucher_item(world.eligible.id, 2_000),
                voucher_item(world.eligible.id, 1_500),
                voucher_item(world.eligible.id, 1),
                voucher_item(world.women_led.id, 1_500),
                voucher_item(world.women_led.id, 1),
            ],
        ),
        409,
        "insufficient_funds",
        before,
    )
    assert [e["index"] for e in problem["errors"]] == [2, 4]
    assert balances(client, world.funder, pid)["unissued"] == 3_500

    # Exactly everything can be issued, and then not one cent more.
    issue(client, world.funder, pid, world.eligible.id, 3_500)
    issue(client, world.funder, pid, world.women_led.id, 1_500)
    assert balances(client, world.funder, pid) == {
        "deposited": 5_000,
        "unissued": 0,
        "unissued_women_led_reserve": 0,
        "outstanding": 5_000,
        "held": 0,
        "payable": 0,
        "settled": 0,
        "returned_to_funder": 0,
    }
    before = snapshot(client)
    for group in (world.eligible, world.women_led):
        world.refused(
            world.post(path, **voucher_item(group.id, 1)), 409, "insufficient_funds", before
        )


def test_the_reserve_stays_for_women_led_groups(world: World) -> None:
    client = world.client
    programme = funded_programme(client, world.funder, 10_000, rules={"women_led_reserve_pct": 100})
    pid = programme["id"]
    before = snapshot(client)
    world.refused(
        world.post(f"/v1/programmes/{pid}/vouchers", **voucher_item(world.eligible.id, 1)),
        409,
        "insufficient_funds",
        before,
    )
    issue(client, world.funder, pid, world.women_led.id, 10_000)
    assert balances(client, world.funder, pid)["unissued_women_led_reserve"] == 0


def test_default_and_explicit_expiry(world: World) -> None:
    client = world.client
    # Default: now + voucher_validity_days ...
    short = funded_programme(client, world.funder, 1_000, rules={"voucher_validity_days": 30})
    before = datetime.now(UTC)
    voucher = issue(client, world.funder, short["id"], world.eligible.id, 100)
    expires_at = datetime.fromisoformat(voucher["expires_at"])
    assert before + timedelta(days=30) <= expires_at <= datetime.now(UTC) + timedelta(days=30)
    # ... capped at the programme's end (the world's programme: 365 days, ends in 200).
    voucher = issue(client, world.manager, world.pid, world.eligible.id, 100)
    assert datetime.fromisoformat(voucher["expires_at"]) == datetime.fromisoformat(
        world.programme["ends_at"]
    )
    # An explicit expiry up to the end is kept.
    wanted = datetime.fromisoformat(world.programme["ends_at"])
    voucher = issue(
        client, world.manager, world.pid, world.women_led.id, 100, expires_at=wanted.isoformat()
    )
    assert datetime.fromisoformat(voucher["expires_at"]) == wanted
    in_a_week = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    voucher = issue(
        client,
        world.manager,
        world.pid,
        world.women_led.id,
        100,
        expires_at=in_a_week.astimezone(timezone(timedelta(hours=2))).isoformat(),
    )
    assert voucher["expires_at"].endswith(("Z", "+00:00"))  # given at +02:00, told in UTC
    assert datetime.fromisoformat(voucher["expires_at"]) == in_a_week
    # The same for a programme's end.
    programme = create_programme(
        client,
        world.funder,
        ends_at=in_a_week.astimezone(timezone(-timedelta(hours=5))).isoformat(),
    )
    assert programme["ends_at"].endswith(("Z", "+00:00"))
    assert datetime.fromisoformat(programme["ends_at"]) == in_a_week


# --- batches -------------------------------------------------------------------------


@pytest.mark.slow  # a big batch
def test_a_batch_of_ten_thousand_with_one_bad_item_at_the_end_writes_nothing(
    world: World,
) -> None:
    client = world.client
    programme = funded_programme(client, world.funder, 1_000_000)
    items = [voucher_item(world.batch_group.id, 10) for _ in range(MAX_BATCH - 1)]
    items.append(voucher_item(world.supplier.id, 10))
    before = snapshot(client)
    problem = world.refused(
        world.post(f"/v1/programmes/{programme['id']}/vouchers/batch", vouchers=items),
        422,
        "validation_error",
        before,
    )
    assert [(e["index"], e["code"]) for e in problem["errors"]] == [(9_999, "validation_error")]
    assert balances(client, world.funder, programme["id"])["unissued"] == 1_000_000


def test_a_batch_lists_every_bad_item(world: World) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    items = [
        voucher_item(world.eligible.id, 100),
        voucher_item(world.wrong_type.id, 100),  # 1
        voucher_item(world.women_led.id, 100),
        voucher_item(world.eligible.id, 10_001),  # 3
        voucher_item(world.eligible.id, 100, service_categories=["marketing"]),  # 4
        voucher_item(world.eligible.id, 100),
        voucher_item(world.supplier.id, 100),  # 6
        voucher_item(world.women_led.id, 100, expires_at=past),  # 7
        voucher_item(world.wrong_origin.id, 100),  # 8
    ]
    before = snapshot(world.client)
    problem = world.refused(
        world.post(f"/v1/programmes/{world.pid}/vouchers/batch", world.manager, vouchers=items),
        422,
        "group_not_eligible",  # the first bad item's
        before,
    )
    assert [(e["index"], e["code"]) for e in problem["errors"]] == [
        (1, "group_not_eligible"),
        (3, "limit_exceeded"),
        (4, "category_not_allowed"),
        (6, "validation_error"),
        (7, "validation_error"),
        (8, "group_not_eligible"),
    ]
    assert all(e["detail"] for e in problem["errors"])


def test_batch_size_is_bounded(world: World) -> None:
    before = snapshot(world.client)
    path = f"/v1/programmes/{world.pid}/vouchers/batch"
    too_many = [voucher_item(world.eligible.id, 1)] * (MAX_BATCH + 1)
    world.refused(world.post(path, vouchers=too_many), 422, "validation_error", before)
    world.refused(world.post(path, vouchers=[]), 422, "validation_error", before)
    world.refused(world.post(path), 422, "validation_error", before)


# --- the dry run of a batch ----------------------------------------------------------


def _bad_and_good_items(world: World) -> list[dict[str, Any]]:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    return [
        voucher_item(world.eligible.id, 100),
        voucher_item(world.wrong_type.id, 100),  # 1
        voucher_item(world.eligible.id, 10_001),  # 2
        voucher_item(world.eligible.id, 100, service_categories=["marketing"]),  # 3
        voucher_item(world.supplier.id, 100),  # 4
        voucher_item(world.women_led.id, 100, expires_at=past),  # 5
        voucher_item(world.eligible.id, 9_000),
        voucher_item(world.eligible.id, 9_000),  # 7: over the group's cap with item 6
    ]


def test_the_batch_check_lists_what_the_batch_refuses_and_writes_nothing(world: World) -> None:
    items = _bad_and_good_items(world)
    before = snapshot(world.client)
    checked = world.post(
        f"/v1/programmes/{world.pid}/vouchers/batch/check", world.manager, vouchers=items
    )
    assert checked.status_code == 200, checked.text
    assert snapshot(world.client) == before, "a check wrote something"
    body = checked.json()
    assert (body["valid"], body["count"]) == (False, len(items))
    assert body["total_amount"] == sum(item["amount"] for item in items)
    refused = world.refused(
        world.post(f"/v1/programmes/{world.pid}/vouchers/batch", world.manager, vouchers=items),
        422,
        "group_not_eligible",
        before,
    )
    assert body["errors"] == refused["errors"]
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (1, "group_not_eligible"),
        (2, "limit_exceeded"),
        (3, "category_not_allowed"),
        (4, "validation_error"),
        (5, "validation_error"),
        (7, "limit_exceeded"),
    ]


def test_a_valid_batch_check_writes_no_journal_row(world: World) -> None:
    items = [voucher_item(world.eligible.id, 100), voucher_item(world.women_led.id, 250)]
    before = snapshot(world.client)
    path = f"/v1/programmes/{world.pid}/vouchers/batch/check"
    checked = world.post(path, vouchers=items)
    assert checked.status_code == 200, checked.text
    assert checked.json() == {"valid": True, "count": 2, "total_amount": 350, "errors": []}
    assert "Idempotent-Replayed" not in checked.headers
    # The same body twice with a key: a look-up stores no answer to replay.
    again = world.client.post(
        path,
        headers=world.funder.headers | {"Idempotency-Key": "check-1"},
        json={"vouchers": items},
    )
    assert again.json() == checked.json()
    assert snapshot(world.client) == before, "a check wrote something"


def test_the_batch_check_refuses_what_the_batch_refuses_as_a_whole(world: World) -> None:
    before = snapshot(world.client)
    path = f"/v1/programmes/{world.pid}/vouchers/batch/check"
    world.refused(world.post(path, vouchers=[]), 422, "validation_error", before)
    world.refused(
        world.post(path, world.auditor, vouchers=[voucher_item(world.eligible.id, 1)]),
        403,
        "forbidden",
        before,
    )
    world.refused(
        world.post(path, world.other_funder, vouchers=[voucher_item(world.eligible.id, 1)]),
        404,
        "not_found",
        before,
    )
