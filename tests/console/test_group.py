"""The groups' pages through the console, without a browser: what they show comes
from the API as the group's member, a decision posted twice is made once, and
another group's voucher or claim is the not-found page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers
from tests.factories.console import console_client, console_sign_in, form_on
from tests.factories.people import accept, invite
from voucherledger.core.settings import Settings


@dataclass
class Scheme:
    client: TestClient
    admin: dict[str, str]
    funder: Party
    supplier: Party
    group: Party
    programme: dict[str, Any]
    voucher: dict[str, Any]

    def claim(self, amount: int = 1500, description: str = "Board training") -> dict[str, Any]:
        response = self.client.post(
            "/v1/redemptions",
            headers=self.supplier.headers,
            json={
                "voucher_code": self.voucher["code"],
                "amount": amount,
                "service_category": "leadership",
                "description": description,
            },
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def sign_in_member_of(self, account_id: str) -> None:
        invited = invite(self.client, self.admin, account_id, "owner")
        assert accept(self.client, invited["invite_token"]).status_code == 200
        assert console_sign_in(self.client, invited["email"]).status_code == 303


@pytest.fixture
def scheme(settings: Settings) -> Iterator[Scheme]:
    with console_client(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        supplier = make_party(client, admin, "supplier", name="Skills Cooperative")
        group = make_party(client, admin, "group", name="Hometown Association of Kumasi")
        programme = client.post(
            "/v1/programmes",
            headers=funder.headers,
            json={"name": "Capacity 2027", "currency": "EUR", "service_categories": ["leadership"]},
        ).json()
        client.post(
            f"/v1/programmes/{programme['id']}/deposits",
            headers=funder.headers,
            json={"amount": 100_000, "reference": "DEP-1"},
        )
        client.post(
            f"/v1/programmes/{programme['id']}/accreditations",
            headers=funder.headers,
            json={"supplier_id": supplier.id, "service_categories": ["leadership"]},
        )
        voucher = client.post(
            f"/v1/programmes/{programme['id']}/vouchers",
            headers=funder.headers,
            json={"group_id": group.id, "amount": 50_000},
        ).json()
        found = Scheme(client, admin, funder, supplier, group, programme, voucher)
        found.sign_in_member_of(group.id)
        yield found


def test_my_vouchers_show_balance_categories_and_suppliers(scheme: Scheme) -> None:
    scheme.claim(2000)
    html = scheme.client.get("/console/vouchers").text
    assert f'href="/console/vouchers/{scheme.voucher["id"]}"' in html
    assert "€500.00" in html  # the amount
    assert "€480.00" in html  # the balance after the held claim
    assert "€20.00" in html  # held
    assert "Skills Cooperative" in html
    assert "leadership" in html


def test_a_voucher_page_shows_the_code_grouped_its_qr_and_statement(scheme: Scheme) -> None:
    scheme.claim(2000)
    html = scheme.client.get(f"/console/vouchers/{scheme.voucher['id']}").text
    for part in scheme.voucher["code"].split("-"):
        assert f"<span>{part}</span>" in html
    assert 'src="data:image/svg+xml;base64,' in html
    statement = html[html.index('id="statement"') :]
    assert statement.count("<tr>") == 3  # the head, the issue and the hold
    assert "Issued" in statement
    assert "Claimed, held until you confirm" in statement


def test_confirming_twice_with_one_form_confirms_once(scheme: Scheme) -> None:
    claim = scheme.claim(2500)
    form = form_on(scheme.client, "/console/claims", f"/console/claims/{claim['id']}/confirm")
    first = form.post(scheme.client)
    again = form.post(scheme.client)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == "/console/claims?notice=claim_confirmed"
    found = scheme.client.get(f"/v1/redemptions/{claim['id']}").json()
    assert found["status"] == "captured"
    voucher = scheme.client.get(f"/v1/vouchers/{scheme.voucher['id']}").json()
    assert voucher["balance"] == 50_000 - 2500
    assert voucher["held"] == 0


def test_rejecting_needs_a_reason_and_then_releases_the_hold(scheme: Scheme) -> None:
    claim = scheme.claim(3000)
    form = form_on(scheme.client, "/console/claims", f"/console/claims/{claim['id']}/reject")
    refused = form.post(scheme.client, reason="")
    assert refused.status_code == 422
    assert "Some fields need correcting." in refused.text
    assert scheme.client.get(f"/v1/redemptions/{claim['id']}").json()["status"] == "pending"
    done = form.post(scheme.client, reason="Not delivered")
    assert done.headers["location"] == "/console/claims?notice=claim_rejected"
    assert scheme.client.get(f"/v1/redemptions/{claim['id']}").json()["status"] == "voided"


def test_feedback_on_a_confirmed_claim(scheme: Scheme) -> None:
    claim = scheme.claim(1000)
    form_on(scheme.client, "/console/claims", f"/console/claims/{claim['id']}/confirm").post(
        scheme.client
    )
    form = form_on(scheme.client, "/console/claims", f"/console/claims/{claim['id']}/feedback")
    sent = form.post(scheme.client, rating="4", outcome_kind="process", outcome="A board plan")
    assert sent.headers["location"] == "/console/claims?notice=feedback_given"
    listing = scheme.client.get(f"/v1/programmes/{scheme.programme['id']}/suppliers").json()
    assert listing[0]["average_rating"] == 4


def test_a_post_without_the_sessions_csrf_token_does_nothing(scheme: Scheme) -> None:
    claim = scheme.claim(1000)
    response = scheme.client.post(
        f"/console/claims/{claim['id']}/confirm",
        data={"csrf_token": "forged", "idempotency_key": "k1"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert scheme.client.get(f"/v1/redemptions/{claim['id']}").json()["status"] == "pending"


def test_another_groups_voucher_and_claim_are_not_found(scheme: Scheme) -> None:
    claim = scheme.claim(1000)
    other = make_party(scheme.client, scheme.admin, "group", name="Another group")
    scheme.client.cookies.clear()
    scheme.sign_in_member_of(other.id)
    for path in (
        f"/console/vouchers/{scheme.voucher['id']}",
        f"/console/vouchers/{scheme.voucher['id']}/print",
        "/console/vouchers/vch_00000000000000000000000000",
    ):
        response = scheme.client.get(path)
        assert response.status_code == 404, path
        assert "There is nothing here, or it is not yours to see." in response.text
    html = scheme.client.get("/console/claims").text
    assert claim["id"] not in html
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf is not None
    confirm = scheme.client.post(
        f"/console/claims/{claim['id']}/confirm",
        data={"csrf_token": csrf.group(1), "idempotency_key": "k2"},
    )
    assert confirm.status_code == 404
    assert (
        scheme.client.get(f"/v1/redemptions/{claim['id']}", headers=scheme.funder.headers).json()[
            "status"
        ]
        == "pending"
    )


def test_only_the_suppliers_that_can_take_a_voucher_are_listed_under_it(scheme: Scheme) -> None:
    """Found by a newcomer: every supplier of the programme was listed under every
    voucher, also those accredited only for categories the voucher does not buy."""
    client, headers = scheme.client, scheme.funder.headers
    programme = client.post(
        "/v1/programmes",
        headers=headers,
        json={
            "name": "Skills 2028",
            "currency": "EUR",
            "service_categories": ["leadership", "digital_skills"],
        },
    ).json()
    pid = programme["id"]
    client.post(
        f"/v1/programmes/{pid}/deposits",
        headers=headers,
        json={"amount": 100_000, "reference": "DEP-2"},
    )
    digital = make_party(
        client,
        scheme.admin,
        "supplier",
        name="Open Door Digital",
        supplier={"service_categories": ["digital_skills"]},
    )
    for supplier_id, category in (
        (scheme.supplier.id, "leadership"),
        (digital.id, "digital_skills"),
    ):
        accredited = client.post(
            f"/v1/programmes/{pid}/accreditations",
            headers=headers,
            json={"supplier_id": supplier_id, "service_categories": [category]},
        )
        assert accredited.status_code == 201, accredited.text
    made = {}
    for category in ("leadership", "digital_skills"):
        issued = client.post(
            f"/v1/programmes/{pid}/vouchers",
            headers=headers,
            json={"group_id": scheme.group.id, "amount": 10_000, "service_categories": [category]},
        )
        assert issued.status_code == 201, issued.text
        made[category] = issued.json()["id"]
    leadership = client.get(f"/console/vouchers/{made['leadership']}").text
    assert "Skills Cooperative" in leadership
    assert "Open Door Digital" not in leadership
    digital_page = client.get(f"/console/vouchers/{made['digital_skills']}").text
    assert "Open Door Digital" in digital_page
    assert "Skills Cooperative" not in digital_page
    listing = client.get("/console/vouchers").text
    card = listing[listing.index(f"/console/vouchers/{made['digital_skills']}") :]
    card = card[: card.index("</article>")] if "</article>" in card else card[:3000]
    assert "Open Door Digital" in card
