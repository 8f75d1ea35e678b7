"""Settlements with two people, driven without a browser: the payable per supplier is
the ledger's, an officer proposes, the proposer gets no approve button and the API's
refusal when posting anyway, an approver approves (or rejects) and the API agrees."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.factories.console import console_client, form_on, hidden_fields
from tests.factories.evidence import upload
from tests.factories.people import PASSWORD, add_member, new_email, set_password
from tests.factories.redemptions import claim, decide
from tests.factories.sessions import add_human
from tests.factories.settlements import ApprovalWorld, approval_world, get_settlement
from voucherledger.accounts.models import Member
from voucherledger.core.auth import MemberRole
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings

IBAN = "DE89370400440532013000"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits: the one sign-in checks


def browser_of(client: TestClient) -> TestClient:
    """Another browser (its own cookie jar) on the same app."""
    return TestClient(client.app, raise_server_exceptions=False)


def sign_in(client: TestClient, email: str, *, totp: bool = False) -> TestClient:
    browser = browser_of(client)
    form = browser.get("/console/signin")
    data = {"pre": hidden_fields(form.text)["pre"], "email": email, "password": PASSWORD}
    if totp:
        data["totp_code"] = pyotp.TOTP(TOTP_SECRET).now()
    signed = browser.post("/console/signin", data=data, follow_redirects=False)
    assert signed.status_code == 303, signed.text
    return browser


def funder_person(
    world: ApprovalWorld, role: MemberRole, *, totp: bool = False
) -> tuple[str, TestClient]:
    """A member of the world's funder with a password, signed in: (member id, browser)."""
    email = new_email(role)
    person = add_member(world.client, world.cast.funder.id, role, email=email, totp=totp)
    set_password(world.client, person.id, PASSWORD)
    if totp:
        factory = world.client.app.state.session_factory  # type: ignore[attr-defined]
        with transaction(factory) as session:
            member = session.get(Member, person.id)
            assert member is not None
            member.totp_secret = TOTP_SECRET
    return person.id, sign_in(world.client, email, totp=totp)


@dataclass
class Desk:
    world: ApprovalWorld
    officer_id: str
    officer: TestClient
    approver_id: str
    approver: TestClient

    @property
    def settlements_page(self) -> str:
        return f"/console/programmes/{self.world.programme_id}/settlements"


@pytest.fixture
def desk(settings: Settings) -> Iterator[Desk]:
    with console_client(settings) as client:
        world = approval_world(client)
        patched = client.patch(
            f"/v1/accounts/{world.cast.supplier.id}/supplier-profile",
            headers=world.cast.supplier.headers,
            json={"payout_iban": IBAN},
        )
        assert patched.status_code == 200, patched.text
        officer_id, officer = funder_person(world, "operator")
        approver_id, approver = funder_person(world, "approver", totp=True)
        yield Desk(world, officer_id, officer, approver_id, approver)


def propose(desk: Desk, reference: str = "WIRE-2026-001") -> str:
    form = form_on(desk.officer, desk.settlements_page, desk.settlements_page)
    made = form.post(
        desk.officer, supplier_id=desk.world.cast.supplier.id, payout_reference=reference
    )
    assert made.status_code == 303, made.text
    found = re.fullmatch(
        r"/console/payouts/(stl_[A-Za-z0-9]+)\?notice=settlement_proposed", made.headers["location"]
    )
    assert found, made.headers["location"]
    return found[1]


def payable(desk: Desk) -> int:
    w = desk.world
    answer = w.client.get(
        f"/v1/ledger/accounts/supplier:{w.cast.supplier.id}:payable:{w.programme_id}/balance",
        headers=w.cast.funder.headers,
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])


def test_the_payable_shown_is_the_ledgers_and_a_proposal_moves_no_money(desk: Desk) -> None:
    desk.world.captured(1234)
    desk.world.captured(766)
    assert payable(desk) == 2000
    shown = desk.officer.get(desk.settlements_page)
    assert shown.status_code == 200
    assert "€20.00" in shown.text  # payable and to settle, in the programme's currency
    assert "Propose €20.00 for" in shown.text

    settlement_id = propose(desk)
    stl = get_settlement(desk.world.client, desk.world.cast.funder, settlement_id)
    assert stl["status"] == "proposed"
    assert stl["amount"] == 2000
    assert stl["payout_reference"] == "WIRE-2026-001"
    assert stl["proposed_by"] == desk.officer_id
    assert payable(desk) == 2000  # nothing paid yet

    after = desk.officer.get(desk.settlements_page).text
    assert "Nothing to settle" in after  # all of it awaits approval
    assert "Propose €" not in after


def test_the_proposer_sees_no_approve_button_and_is_refused_anyway(desk: Desk) -> None:
    desk.world.captured(500)
    settlement_id = propose(desk)
    page = desk.officer.get(f"/console/payouts/{settlement_id}")
    assert page.status_code == 200
    assert f"/console/payouts/{settlement_id}/approve" not in page.text
    assert "You proposed this settlement" in page.text
    assert IBAN in page.text

    csrf = hidden_fields(page.text)["csrf_token"]
    refused = desk.officer.post(
        f"/console/payouts/{settlement_id}/approve",
        data={"csrf_token": csrf, "idempotency_key": "form-proposer-tries"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    # An operator is below the approver role: forbidden before the second-person rule.
    assert "Your role does not allow this." in refused.text
    stl = get_settlement(desk.world.client, desk.world.cast.funder, settlement_id)
    assert stl["status"] == "proposed"


def test_an_approver_who_proposed_is_refused_second_person_required(desk: Desk) -> None:
    desk.world.captured(500)
    form = form_on(desk.approver, desk.settlements_page, desk.settlements_page)
    made = form.post(desk.approver, supplier_id=desk.world.cast.supplier.id, payout_reference="R")
    assert made.status_code == 303, made.text
    settlement_id = made.headers["location"].split("/")[-1].split("?")[0]
    page = desk.approver.get(f"/console/payouts/{settlement_id}")
    assert f"/console/payouts/{settlement_id}/approve" not in page.text
    assert f"/console/payouts/{settlement_id}/reject" in page.text  # a withdrawal
    refused = desk.approver.post(
        f"/console/payouts/{settlement_id}/approve",
        data={"csrf_token": hidden_fields(page.text)["csrf_token"]},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert "the one who proposed it cannot" in refused.text
    stl = get_settlement(desk.world.client, desk.world.cast.funder, settlement_id)
    assert stl["status"] == "proposed"


def test_a_viewer_sees_the_payable_but_no_form_and_is_refused(desk: Desk) -> None:
    desk.world.captured(300)
    _, viewer = funder_person(desk.world, "viewer")
    page = viewer.get(desk.settlements_page)
    assert page.status_code == 200
    assert "€3.00" in page.text
    assert f'action="{desk.settlements_page}"' not in page.text
    refused = viewer.post(
        desk.settlements_page,
        data={
            "csrf_token": hidden_fields(page.text)["csrf_token"],
            "supplier_id": desk.world.cast.supplier.id,
            "payout_reference": "R",
        },
        follow_redirects=False,
    )
    assert refused.status_code == 403
    listed = desk.world.client.get(
        "/v1/settlements",
        headers=desk.world.cast.funder.headers,
        params={"programme_id": desk.world.programme_id},
    )
    assert listed.json()["data"] == []


def test_an_approver_sees_the_proposal_with_its_evidence_and_approves_it(desk: Desk) -> None:
    w = desk.world
    uploaded = upload(w.client, w.cast.supplier.headers)
    made = claim(w.client, w.cast.supplier, w.code, 900, evidence_ids=[uploaded["id"]])
    claim_id = str(made["id"])
    assert decide(w.client, w.cast.group, claim_id, "confirm").status_code == 200
    settlement_id = propose(desk)
    waiting = desk.approver.get("/console/approvals")
    assert waiting.status_code == 200
    assert f"/console/payouts/{settlement_id}" in waiting.text
    assert "Review and approve €9.00" in waiting.text

    page = desk.approver.get(f"/console/payouts/{settlement_id}")
    assert claim_id in page.text
    assert IBAN in page.text
    read = desk.world.client.get(
        f"/v1/redemptions/{claim_id}", headers=desk.world.cast.funder.headers
    ).json()
    assert [f["sha256"] for f in read["evidence_files"]] == [uploaded["sha256"]]
    assert uploaded["sha256"] in page.text

    form = form_on(
        desk.approver,
        f"/console/payouts/{settlement_id}",
        f"/console/payouts/{settlement_id}/approve",
    )
    approved = form.post(desk.approver)
    assert approved.status_code == 303, approved.text
    assert approved.headers["location"].endswith("notice=settlement_approved")
    stl = get_settlement(desk.world.client, desk.world.cast.funder, settlement_id)
    assert stl["status"] == "settled"
    assert stl["approved_by"] == desk.approver_id
    assert payable(desk) == 0
    assert "Approve and pay" not in desk.approver.get(f"/console/payouts/{settlement_id}").text
    assert f"/console/payouts/{settlement_id}" not in desk.approver.get("/console/approvals").text


def test_an_approver_rejects_with_a_reason_and_the_claims_are_free_again(desk: Desk) -> None:
    desk.world.captured(300)
    settlement_id = propose(desk)
    here = f"/console/payouts/{settlement_id}"
    form = form_on(desk.approver, here, f"{here}/reject")
    empty = form.post(desk.approver, reason="")
    assert empty.status_code == 422
    assert 'aria-invalid="true"' in empty.text
    assert (
        get_settlement(desk.world.client, desk.world.cast.funder, settlement_id)["status"]
        == "proposed"
    )

    form = form_on(desk.approver, here, f"{here}/reject")
    rejected = form.post(desk.approver, reason="The IBAN is not the one on the contract")
    assert rejected.status_code == 303, rejected.text
    stl = get_settlement(desk.world.client, desk.world.cast.funder, settlement_id)
    assert stl["status"] == "rejected"
    assert stl["rejection_reason"] == "The IBAN is not the one on the contract"
    assert "Propose €3.00 for" in desk.officer.get(desk.settlements_page).text


def test_an_approver_without_a_second_factor_is_told_to_set_it_up(desk: Desk) -> None:
    desk.world.captured(300)
    settlement_id = propose(desk)
    _, untrusted = funder_person(desk.world, "approver")
    here = f"/console/payouts/{settlement_id}"
    form = form_on(untrusted, here, f"{here}/approve")
    refused = form.post(untrusted)
    assert refused.status_code == 403
    assert "Set up two-step sign-in before you approve a payment." in refused.text
    assert (
        get_settlement(desk.world.client, desk.world.cast.funder, settlement_id)["status"]
        == "proposed"
    )


def test_nothing_to_settle_is_said_in_words(desk: Desk) -> None:
    desk.world.captured(300)
    form = form_on(desk.officer, desk.settlements_page, desk.settlements_page)
    propose(desk)
    again = form.post(
        desk.officer,
        supplier_id=desk.world.cast.supplier.id,
        payout_reference="again",
        idempotency_key="form-another",
    )
    assert again.status_code == 409
    assert "This supplier has nothing left to settle." in again.text


def test_the_pages_are_the_funders_only(desk: Desk) -> None:
    w = desk.world
    manager = add_human(w.client, w.cast.manager.id, "owner")
    browser = sign_in(w.client, manager.email)
    for address in ("/console/approvals", desk.settlements_page):
        assert browser.get(address).status_code == 404
    w.captured(300)
    settlement_id = propose(desk)
    assert browser.get(f"/console/payouts/{settlement_id}").status_code == 404
    other = add_human(w.client, w.cast.other_funder.id, "owner")
    assert (
        sign_in(w.client, other.email).get(f"/console/payouts/{settlement_id}").status_code == 404
    )


def test_the_sign_in_asks_for_the_code_in_the_readers_words(desk: Desk) -> None:
    """Found by a newcomer: the prompt for the code repeated the API's English detail
    ("Send totp_code: …") under it, on French pages too, and read like a failure."""
    world = desk.world
    email = new_email("approver")
    person = add_member(world.client, world.cast.funder.id, "approver", email=email, totp=True)
    set_password(world.client, person.id, PASSWORD)
    browser = browser_of(world.client)
    browser.cookies.set("vl_lang", "fr")
    form = browser.get("/console/signin")
    asked = browser.post(
        "/console/signin",
        data={"pre": hidden_fields(form.text)["pre"], "email": email, "password": PASSWORD},
    )
    assert asked.status_code == 401
    assert 'name="totp_code"' in asked.text
    assert "Send totp_code" not in asked.text
