"""Who may propose, read, approve and reject a settlement of a two-person programme.

Callers: the funder's members (owner, approver, operator, viewer), the funder's own
account key, another funder's owner, the programme's supplier, auditor and manager,
the group holding its voucher, the operator (admin) and no key. Each expected answer
is a status and a problem code; a refusal writes nothing. Every mismatch is
collected and reported together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
from fastapi.testclient import TestClient

from tests.factories.app import admin_headers, client_for
from tests.factories.redemptions import claim_snapshot
from tests.factories.settlements import ApprovalWorld, approval_world, propose
from voucherledger.core.settings import Settings

CALLERS = (
    "owner",
    "approver",
    "operator",
    "viewer",
    "account key",
    "other funder",
    "supplier",
    "auditor",
    "manager",
    "group",
    "admin",
    "no key",
)
FUNDER_SIDE = ("owner", "approver", "operator", "viewer", "account key")
UNKNOWN = "stl_01ARZ3NDEKTSV4RRFFQ69G5FAV"

Expect = tuple[int, str | None]
OK: Expect = (0, None)  # the case's success status
FORBIDDEN: Expect = (403, "forbidden")
NOT_FOUND: Expect = (404, "not_found")
SECOND: Expect = (403, "second_person_required")


@dataclass
class World:
    approval: ApprovalWorld
    headers_of: dict[str, dict[str, str]]

    def proposal(self) -> str:
        self.approval.captured()
        w = self.approval
        made = propose(w.client, w.people.officer, w.programme_id, w.cast.supplier.id)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def captured(self) -> str:
        return self.approval.captured()


@dataclass(frozen=True)
class Case:
    call: Callable[[World, dict[str, str], str], httpx.Response]
    success: int
    expected: dict[str, Expect]
    setup: Callable[[World], str]


def table(**overrides: Expect) -> dict[str, Expect]:
    """Everyone refused as a wrong kind of account (403), no key 401, but ``overrides``
    (caller names with spaces written as underscores)."""
    out: dict[str, Expect] = dict.fromkeys(CALLERS, FORBIDDEN)
    out["no key"] = (401, "unauthenticated")
    out.update({name.replace("_", " "): want for name, want in overrides.items()})
    return out


def _propose(w: World, h: dict[str, str], _: str) -> httpx.Response:
    a = w.approval
    response: httpx.Response = a.client.post(
        f"/v1/programmes/{a.programme_id}/settlements",
        headers=h,
        json={"supplier_id": a.cast.supplier.id, "payout_reference": "wire"},
    )
    return response


CASES: dict[str, Case] = {
    "POST /v1/programmes/{id}/settlements": Case(
        _propose,
        201,
        table(
            owner=OK,
            approver=OK,
            operator=OK,
            account_key=OK,
            viewer=FORBIDDEN,
            other_funder=NOT_FOUND,
        ),
        World.captured,
    ),
    "GET /v1/settlements/{id}": Case(
        lambda w, h, target: w.approval.client.get(f"/v1/settlements/{target}", headers=h),
        200,
        table(
            **{name.replace(" ", "_"): OK for name in FUNDER_SIDE},
            supplier=OK,
            auditor=OK,
            other_funder=NOT_FOUND,
        ),
        World.proposal,
    ),
    "GET /v1/settlements/{unknown}": Case(
        lambda w, h, _: w.approval.client.get(f"/v1/settlements/{UNKNOWN}", headers=h),
        200,
        table(
            **{name.replace(" ", "_"): NOT_FOUND for name in FUNDER_SIDE},
            supplier=NOT_FOUND,
            auditor=NOT_FOUND,
            other_funder=NOT_FOUND,
        ),
        lambda w: "",
    ),
    "GET /v1/settlements?status=proposed": Case(
        lambda w, h, _: w.approval.client.get(
            "/v1/settlements", headers=h, params={"status": "proposed"}
        ),
        200,
        table(
            **{name.replace(" ", "_"): OK for name in FUNDER_SIDE},
            supplier=OK,
            auditor=OK,
            other_funder=OK,
        ),
        lambda w: "",
    ),
    "POST /v1/settlements/{id}/approve": Case(
        lambda w, h, target: w.approval.client.post(f"/v1/settlements/{target}/approve", headers=h),
        200,
        table(
            owner=OK,
            approver=OK,
            operator=FORBIDDEN,
            viewer=FORBIDDEN,
            account_key=SECOND,
            other_funder=NOT_FOUND,
        ),
        World.proposal,
    ),
    "POST /v1/settlements/{unknown}/approve": Case(
        lambda w, h, _: w.approval.client.post(f"/v1/settlements/{UNKNOWN}/approve", headers=h),
        200,
        table(
            owner=NOT_FOUND,
            approver=NOT_FOUND,
            operator=NOT_FOUND,
            viewer=FORBIDDEN,  # a viewer changes nothing, whatever the target
            account_key=NOT_FOUND,
            other_funder=NOT_FOUND,
        ),
        lambda w: "",
    ),
    "POST /v1/settlements/{id}/reject": Case(
        lambda w, h, target: w.approval.client.post(
            f"/v1/settlements/{target}/reject", headers=h, json={"reason": "no"}
        ),
        200,
        table(
            owner=OK,
            approver=OK,
            operator=FORBIDDEN,
            viewer=FORBIDDEN,
            account_key=OK,
            other_funder=NOT_FOUND,
        ),
        World.proposal,
    ),
    "POST /v1/settlements/{unknown}/reject": Case(
        lambda w, h, _: w.approval.client.post(
            f"/v1/settlements/{UNKNOWN}/reject", headers=h, json={"reason": "no"}
        ),
        200,
        table(
            owner=NOT_FOUND,
            approver=NOT_FOUND,
            operator=NOT_FOUND,
            viewer=FORBIDDEN,
            account_key=NOT_FOUND,
            other_funder=NOT_FOUND,
        ),
        lambda w: "",
    ),
}


def build_world(client: TestClient) -> World:
    a = approval_world(client)
    other = approval_world(client)
    headers = {
        "owner": a.people.owner.headers,
        "approver": a.people.approver.headers,
        "operator": a.people.officer.headers,
        "viewer": a.people.viewer.headers,
        "account key": a.cast.funder.headers,
        "other funder": other.people.owner.headers,
        "supplier": a.cast.supplier.headers,
        "auditor": a.cast.auditor.headers,
        "manager": a.cast.manager.headers,
        "group": a.cast.group.headers,
        "admin": admin_headers(client),
        "no key": {},
    }
    return World(a, headers)


def test_authorisation_table(settings: Settings) -> None:
    mismatches: list[str] = []
    with client_for(settings) as client:
        world = build_world(client)
        for endpoint, case in CASES.items():
            assert set(case.expected) == set(CALLERS), endpoint
            for caller in CALLERS:
                target = case.setup(world)
                before = claim_snapshot(client)
                status, code = case.expected[caller]
                want = (status or case.success, code)
                response = case.call(world, world.headers_of[caller], target)
                got: tuple[int, str | None] = (response.status_code, None)
                if response.status_code >= 400:
                    got = (response.status_code, response.json().get("code"))
                    if claim_snapshot(client) != before:
                        mismatches.append(f"{endpoint} as {caller}: refused but wrote")
                if got != want:
                    mismatches.append(
                        f"{endpoint} as {caller}: want {want}, got {got} {response.text[:200]}"
                    )
    assert mismatches == [], "\n".join(mismatches)
