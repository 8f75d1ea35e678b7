"""Who may call each claim and settlement endpoint, and what everyone else gets.

A wrong role for an endpoint is 403 ``forbidden``; a claim (or programme) of other
parties is 404 ``not_found``, exactly as an unknown one; no key is 401. The callers
are the operator, the programme's funder, manager and auditor, the group owning the
voucher, the supplier that claimed, and a funder, a group and a supplier of another
programme. A refused call writes nothing. One world per backend; every mismatch is
collected and reported together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.authz import table_mismatches
from tests.factories.programmes import accredit, funded_programme, issue
from tests.factories.redemptions import claim, claim_body, claim_snapshot, decide
from voucherledger.core.settings import Settings

CALLERS = (
    "admin",
    "funder",
    "other funder",
    "manager",
    "auditor",
    "group",
    "other group",
    "supplier",
    "other supplier",
    "no key",
)
CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
OWNERS = ("funder", "manager", "auditor", "group", "supplier")


@dataclass
class World:
    client: TestClient
    admin: dict[str, str]
    parties: dict[str, Party]
    programme_id: str  # the funder's, with the manager and the auditor
    code: str  # of the group's voucher in it; the supplier is accredited there
    redemption_id: str  # a captured, settled claim of the supplier
    settlement_id: str

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "no key":
            return {}
        if caller == "admin":
            return self.admin
        return self.parties[caller].headers

    def pending(self) -> str:
        return str(claim(self.client, self.parties["supplier"], self.code, 100)["id"])

    def captured(self) -> str:
        redemption_id = self.pending()
        confirmed = decide(self.client, self.parties["group"], redemption_id, "confirm")
        assert confirmed.status_code == 200, confirmed.text
        return redemption_id


def build_world(client: TestClient) -> World:
    admin = admin_headers(client)
    parties = {
        caller: make_party(client, admin, caller.removeprefix("other "))
        for caller in CALLERS
        if caller not in ("admin", "no key")
    }
    programme = funded_programme(
        client,
        parties["funder"],
        10_000_000,
        manager_ids=[parties["manager"].id],
        auditor_ids=[parties["auditor"].id],
    )
    pid = programme["id"]
    code = issue(client, parties["manager"], pid, parties["group"].id, 5_000_000)["code"]
    accredit(client, parties["manager"], pid, parties["supplier"].id, ["leadership"])
    # The other funder's programme: the other group holds a voucher, the other supplier
    # is accredited there — and neither has anything to do with the first programme.
    elsewhere = funded_programme(client, parties["other funder"], 10_000)
    issue(client, parties["other funder"], elsewhere["id"], parties["other group"].id, 1_000)
    accredit(
        client,
        parties["other funder"],
        elsewhere["id"],
        parties["other supplier"].id,
        ["leadership"],
    )
    world = World(client, admin, parties, pid, code, "", "")
    world.redemption_id = world.captured()
    settled = client.post(
        f"/v1/programmes/{pid}/settlements",
        headers=parties["funder"].headers,
        json={"supplier_id": parties["supplier"].id, "payout_reference": "wire 1"},
    )
    assert settled.status_code == 201, settled.text
    world.settlement_id = settled.json()["id"]
    return world


# --- the table ---------------------------------------------------------------------

Call = Callable[[World, dict[str, str], str], httpx.Response]
Check = Callable[[World, str, httpx.Response], bool]


@dataclass(frozen=True)
class Case:
    call: Call
    success: int
    expected: dict[str, int | None]  # None: ``success``
    setup: Callable[[World], str] = lambda w: ""  # a target made afresh for each caller
    check: Check | None = None  # what a successful call must show this caller


def allowed(
    succeed: Iterable[str], not_found: Iterable[str] = (), otherwise: int = 403
) -> dict[str, int | None]:
    """``succeed`` get the success status, ``not_found`` 404, the others ``otherwise``;
    without a key, 401."""
    table: dict[str, int | None] = dict.fromkeys(CALLERS, otherwise)
    table.update(dict.fromkeys(not_found, 404))
    table.update(dict.fromkeys(succeed, None))
    table["no key"] = 401
    return table


def lists_claim(w: World, caller: str, r: httpx.Response) -> bool:
    ids = [item["id"] for item in r.json()["data"]]
    return (w.redemption_id in ids) == (caller in OWNERS)


def lists_settlement(w: World, caller: str, r: httpx.Response) -> bool:
    ids = [item["id"] for item in r.json()["data"]]
    return (w.settlement_id in ids) == (caller in ("funder", "auditor", "supplier"))


def status_is(status: str) -> Check:
    return lambda w, c, r: r.json()["status"] == status


def r(target: str) -> str:
    return f"/v1/redemptions/{target}"


CASES: dict[str, Case] = {
    "POST /v1/redemptions": Case(
        lambda w, h, _: w.client.post("/v1/redemptions", headers=h, json=claim_body(w.code, 100)),
        201,
        # The other supplier has no accreditation in the voucher's programme: to it the
        # code does not exist.
        allowed(("supplier",), ("other supplier",)),
        check=status_is("pending"),
    ),
    "GET /v1/redemptions": Case(
        lambda w, h, _: w.client.get("/v1/redemptions", headers=h, params={"limit": 500}),
        200,
        allowed((*OWNERS, "other funder", "other group", "other supplier")),
        check=lists_claim,
    ),
    "GET /v1/redemptions?programme_id=": Case(
        lambda w, h, _: w.client.get(
            "/v1/redemptions", headers=h, params={"programme_id": w.programme_id, "limit": 500}
        ),
        200,
        allowed((*OWNERS, "other funder", "other group", "other supplier")),
        check=lists_claim,
    ),
    "GET /v1/redemptions/{id}": Case(
        lambda w, h, _: w.client.get(r(w.redemption_id), headers=h),
        200,
        allowed(OWNERS, ("other funder", "other group", "other supplier")),
        check=lambda w, c, resp: resp.json()["id"] == w.redemption_id,
    ),
    "GET /v1/redemptions/{unknown}": Case(
        lambda w, h, _: w.client.get(r("red_01ARZ3NDEKTSV4RRFFQ69G5FAV"), headers=h),
        200,
        allowed((), (*OWNERS, "other funder", "other group", "other supplier")),
    ),
    "POST /v1/redemptions/{id}/confirm": Case(
        lambda w, h, target: w.client.post(f"{r(target)}/confirm", headers=h),
        200,
        allowed(("group",), ("other group",)),
        setup=World.pending,
        check=status_is("captured"),
    ),
    "POST /v1/redemptions/{id}/reject": Case(
        lambda w, h, target: w.client.post(
            f"{r(target)}/reject", headers=h, json={"reason": "never came"}
        ),
        200,
        allowed(("group",), ("other group",)),
        setup=World.pending,
        check=status_is("voided"),
    ),
    "POST /v1/redemptions/{id}/cancel": Case(
        lambda w, h, target: w.client.post(f"{r(target)}/cancel", headers=h),
        200,
        allowed(("supplier",), ("other supplier",)),
        setup=World.pending,
        check=status_is("voided"),
    ),
    "POST /v1/redemptions/{id}/refunds": Case(
        lambda w, h, target: w.client.post(
            f"{r(target)}/refunds", headers=h, json={"amount": 1, "reason": "overcharged"}
        ),
        201,
        # A funder or manager refunds in its own programme: another funder gets 404.
        allowed(("supplier", "funder", "manager"), ("other supplier", "other funder")),
        setup=World.captured,
        check=lambda w, c, resp: resp.json()["refunded_amount"] == 1,
    ),
    "POST /v1/redemptions/{id}/feedback": Case(
        lambda w, h, target: w.client.post(
            f"{r(target)}/feedback",
            headers=h,
            json={"rating": 3, "outcome": "Useful", "outcome_kind": "product"},
        ),
        201,
        allowed(("group",), ("other group",)),
        setup=World.captured,
        check=lambda w, c, resp: resp.json()["rating"] == 3,
    ),
    "POST /v1/programmes/{id}/settlements": Case(
        lambda w, h, _: w.client.post(
            f"/v1/programmes/{w.programme_id}/settlements",
            headers=h,
            json={"supplier_id": w.parties["supplier"].id, "payout_reference": "wire"},
        ),
        201,
        allowed(("funder",), ("other funder",)),
        setup=World.captured,  # so that there is something to settle
        check=lambda w, c, resp: resp.json()["amount"] > 0,
    ),
    "GET /v1/settlements": Case(
        lambda w, h, _: w.client.get("/v1/settlements", headers=h, params={"limit": 500}),
        200,
        allowed(("funder", "auditor", "supplier", "other funder", "other supplier")),
        check=lists_settlement,
    ),
    "GET /v1/settlements/{id}": Case(
        lambda w, h, _: w.client.get(f"/v1/settlements/{w.settlement_id}", headers=h),
        200,
        allowed(("funder", "auditor", "supplier"), ("other funder", "other supplier")),
        check=lambda w, c, resp: resp.json()["id"] == w.settlement_id,
    ),
    "GET /v1/settlements/{unknown}": Case(
        lambda w, h, _: w.client.get("/v1/settlements/stl_01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=h),
        200,
        allowed((), ("funder", "auditor", "supplier", "other funder", "other supplier")),
    ),
    "GET /v1/settlements?programme_id=": Case(
        lambda w, h, _: w.client.get(
            "/v1/settlements", headers=h, params={"programme_id": w.programme_id}
        ),
        200,
        allowed(("funder", "auditor", "supplier", "other funder", "other supplier")),
        check=lists_settlement,
    ),
}


def routes_of_this_issue(client: TestClient) -> set[str]:
    """``METHOD /path`` of the operations of the claim and settlement routers, but for
    approving and rejecting a settlement: their table, by member role, is in
    tests/settlements/test_authorization.py."""
    paths: dict[str, dict[str, Any]] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    paths = {
        path: item
        for path, item in paths.items()
        if not path.endswith(("/approve", "/reject")) or not path.startswith("/v1/settlements/")
    }
    generic = {"{programme_id}": "{id}", "{redemption_id}": "{id}", "{settlement_id}": "{id}"}
    for name, replacement in generic.items():
        paths = {path.replace(name, replacement): item for path, item in paths.items()}
    return {
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if {"redemptions", "settlements"} & set(operation.get("tags", []))
    }


def test_authorisation_table(settings: Settings) -> None:
    with client_for(settings) as client:
        covered = {e.split("?")[0].replace("{unknown}", "{id}") for e in CASES}
        assert routes_of_this_issue(client) == covered
        world = build_world(client)
        mismatches = table_mismatches(client, world, CASES, CALLERS, CODES, claim_snapshot)
    assert mismatches == [], "\n".join(mismatches)
