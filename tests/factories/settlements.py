"""A two-person programme and the people of its funder, for the approval tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.factories.accounts import Party
from tests.factories.people import Person, add_member
from tests.factories.programmes import issue
from tests.factories.redemptions import Cast, claim, claim_programme, decide, make_cast

TWO_PERSON = {"settlement_approval": "two_person"}


@dataclass(frozen=True)
class Funders:
    """The funder's people: an officer who proposes, two approvers and an owner (all
    with a confirmed second factor), an approver without one, and a viewer."""

    officer: Person
    approver: Person
    second_approver: Person
    owner: Person
    untrusted: Person  # an approver with no TOTP
    viewer: Person


@dataclass(frozen=True)
class ApprovalWorld:
    client: TestClient
    cast: Cast
    people: Funders
    programme_id: str
    code: str  # a voucher of the cast's group, large enough for many claims

    def captured(self, amount: int = 100) -> str:
        """A captured claim of the cast's supplier."""
        redemption_id = str(claim(self.client, self.cast.supplier, self.code, amount)["id"])
        confirmed = decide(self.client, self.cast.group, redemption_id, "confirm")
        assert confirmed.status_code == 200, confirmed.text
        return redemption_id


def add_funders(client: TestClient, funder_id: str) -> Funders:
    return Funders(
        officer=add_member(client, funder_id, "operator"),
        approver=add_member(client, funder_id, "approver", totp=True),
        second_approver=add_member(client, funder_id, "approver", totp=True),
        owner=add_member(client, funder_id, "owner", totp=True),
        untrusted=add_member(client, funder_id, "approver"),
        viewer=add_member(client, funder_id, "viewer"),
    )


def approval_world(client: TestClient, amount: int = 1_000_000) -> ApprovalWorld:
    cast = make_cast(client)
    programme = claim_programme(
        client, cast, amount, accredit_for=(cast.supplier,), rules=TWO_PERSON
    )
    pid = str(programme["id"])
    code = str(issue(client, cast.manager, pid, cast.group.id, amount)["code"])
    return ApprovalWorld(client, cast, add_funders(client, cast.funder.id), pid, code)


def propose(
    client: TestClient, who: Party | Person, programme_id: str, supplier_id: str, ref: str = "wire"
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/v1/programmes/{programme_id}/settlements",
        headers=who.headers,
        json={"supplier_id": supplier_id, "payout_reference": ref},
    )
    return response


def approve(client: TestClient, who: Party | Person, settlement_id: str) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/v1/settlements/{settlement_id}/approve", headers=who.headers
    )
    return response


def reject(
    client: TestClient, who: Party | Person, settlement_id: str, reason: str = "wrong account"
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/v1/settlements/{settlement_id}/reject", headers=who.headers, json={"reason": reason}
    )
    return response


def get_settlement(client: TestClient, who: Party | Person, settlement_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/settlements/{settlement_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found
