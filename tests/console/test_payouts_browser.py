"""Paying a supplier with two people, in Chromium: the funder's officer proposes a
settlement from the programme's settlements page and sees no approve button; the
approver, in another browser, signs in with a TOTP code, finds it among the approvals,
checks its claim and evidence hash, and approves it; the officer then sees it paid.
An owner invites a member from the members page. axe on every page, at desktop in
English and at 360 px in French."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.orm import sessionmaker

from tests.factories.accounts import account_body
from tests.factories.browser import (
    DESKTOP,
    PHONE,
    Live,
    assert_accessible,
    browsing,
    chromium,
    live_app,
    person,
    screenshot,
)
from tests.factories.evidence import pdf
from tests.factories.people import PASSWORD
from tests.factories.programmes import programme_body
from tests.factories.redemptions import claim_body
from voucherledger.accounts.models import Member
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow

OFFICER = "officer@fund.example"
APPROVER = "approver@fund.example"
OWNER = "owner@fund.example"
SECRET = pyotp.random_base32()
IBAN = "NL91ABNA0417164300"


@dataclass
class Fund:
    programme_id: str
    funder_key: dict[str, str]
    evidence_sha256: str


def fund(live: Live, settings: Settings) -> Fund:
    """A two-person programme whose supplier has a captured claim with a PDF, and the
    funder's officer, approver (TOTP confirmed) and owner."""
    funder = live.api(
        "POST", "/v1/accounts", live.admin, json=account_body("funder", "Diaspora Fund")
    )
    group = live.api("POST", "/v1/accounts", live.admin, json=account_body("group"))
    supplier = live.api(
        "POST",
        "/v1/accounts",
        live.admin,
        json=account_body(
            "supplier", "Kumasi Trainers", supplier={"service_categories": ["leadership"]}
        ),
    )
    funds = live.key(funder["id"])
    rules = {"settlement_approval": "two_person", "requires_group_confirmation": False}
    programme = live.api(
        "POST", "/v1/programmes", funds, json=programme_body(name="Leaders 2026", rules=rules)
    )
    pid = programme["id"]
    live.api(
        "POST",
        f"/v1/programmes/{pid}/deposits",
        funds,
        json={"amount": 100_000, "reference": "grant"},
    )
    live.api(
        "POST",
        f"/v1/programmes/{pid}/accreditations",
        funds,
        json={"supplier_id": supplier["id"], "service_categories": ["leadership"]},
    )
    voucher = live.api(
        "POST",
        f"/v1/programmes/{pid}/vouchers",
        funds,
        json={"group_id": group["id"], "amount": 50_000},
    )
    shop = live.key(supplier["id"])
    live.api(
        "PATCH", f"/v1/accounts/{supplier['id']}/supplier-profile", shop, json={"payout_iban": IBAN}
    )
    uploaded = live.api(
        "POST",
        "/v1/evidence",
        shop,
        files={"file": ("invoice.pdf", pdf("invoice 7"), "application/pdf")},
    )
    live.api(
        "POST",
        "/v1/redemptions",
        shop,
        json=claim_body(voucher["code"], 12_500, evidence_ids=[uploaded["id"]]),
    )
    person(live, funder["id"], OFFICER, "Efua Boateng", "operator")
    approver_id = person(live, funder["id"], APPROVER, "Joost Bakker", "approver")
    person(live, funder["id"], OWNER, "Nana Asante", "owner")
    # The approver's second factor, as confirming it would leave it (no code used yet).
    engine = create_engine(settings.database_url)
    try:
        with transaction(sessionmaker(engine, expire_on_commit=False)) as session:
            session.execute(
                update(Member)
                .where(Member.id == approver_id)
                .values(totp_secret=SECRET, totp_confirmed_at=utcnow())
            )
    finally:
        engine.dispose()
    return Fund(pid, funds, str(uploaded["sha256"]))


def sign_in(page: Any, email: str, *, totp: bool = False) -> None:
    """In whatever language the page is in: the fields by name."""
    page.goto("/console/signin")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").first.click()
    if totp:
        page.wait_for_selector("input[name=totp_code]")
        page.locator("input[name=totp_code]").fill(pyotp.TOTP(SECRET).now())
        page.locator("form button[type=submit]").first.click()
    page.wait_for_url("**/console/programmes**")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_officer_proposes_and_an_approver_approves(settings: Settings) -> None:
    with live_app(settings) as live, chromium() as browser:
        f = fund(live, settings)
        here = f"/console/programmes/{f.programme_id}/settlements"
        with (
            browsing(browser, base_url=live.url, viewport=DESKTOP) as officer,
            browsing(browser, base_url=live.url, viewport=PHONE, locale="fr-FR") as approver,
        ):
            page = officer.page
            sign_in(page, OFFICER)
            page.goto(here)
            assert (
                page.get_by_role("row", name="Kumasi Trainers")
                .get_by_text("€125.00")
                .first.is_visible()
            )
            assert_accessible(page)
            screenshot(page, "settlements")
            page.get_by_label("Payout reference for Kumasi Trainers").fill("WIRE 2026-07")
            page.get_by_role("button", name="Propose €125.00 for Kumasi Trainers").click()
            page.wait_for_url("**/console/payouts/stl_*?notice=settlement_proposed")
            settlement_url = page.url.split("?")[0]
            assert page.get_by_role("button", name="Approve and pay €125.00").count() == 0
            assert page.get_by_text("You proposed this settlement").first.is_visible()
            assert_accessible(page)

            other = approver.page
            other.goto("/console/lang/fr?next=/console/signin")
            sign_in(other, APPROVER, totp=True)
            other.goto(here)
            assert_accessible(other)
            screenshot(other, "settlements-phone-fr")
            other.goto("/console/approvals")
            assert_accessible(other)
            other.locator(f"a[href='{settlement_url.split(live.url)[1]}']").click()
            other.wait_for_url(settlement_url)
            assert other.get_by_text(f.evidence_sha256).is_visible()
            assert other.get_by_text(IBAN).is_visible()
            assert_accessible(other)
            screenshot(other, "settlement-approve")
            other.locator("form[action$='/approve'] button").click()
            other.wait_for_url("**notice=settlement_approved")
            assert_accessible(other)
            approver.assert_clean()

            page.goto(here)
            assert (
                page.get_by_role("row", name="Kumasi Trainers")
                .get_by_text("Nothing to settle")
                .is_visible()
            )
            settled = live.api(
                "GET", "/v1/settlements", f.funder_key, params={"programme_id": f.programme_id}
            )
            assert [s["status"] for s in settled["data"]] == ["settled"]
            assert page.get_by_text("Paid").first.is_visible()
            officer.assert_clean()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_owner_invites_a_member(settings: Settings) -> None:
    with live_app(settings) as live, chromium() as browser:
        fund(live, settings)
        for viewport, locale in ((DESKTOP, "en-GB"), (PHONE, "fr-FR")):
            with browsing(browser, base_url=live.url, viewport=viewport, locale=locale) as owner:
                page = owner.page
                fr = locale.startswith("fr")
                if fr:
                    page.goto("/console/lang/fr?next=/console/signin")
                sign_in(page, OWNER)
                page.goto("/console/members")
                assert page.get_by_role("row", name="Joost Bakker").is_visible()
                assert_accessible(page)
                if not fr:
                    screenshot(page, "members")
                    page.get_by_label("Their name").fill("Kwame Owusu")
                    page.get_by_label("Their email").fill("kwame@fund.example")
                    page.get_by_label("Role", exact=True).select_option("viewer")
                    page.get_by_role("button", name="Invite and show the link").click()
                    page.wait_for_selector("#invite-link")
                    assert (
                        "/console/invite?token=vlinv_" in page.locator("#invite-link").input_value()
                    )
                    assert_accessible(page)
                    page.get_by_role("link", name="Back to the members").click()
                    assert page.get_by_role("row", name="Kwame Owusu").is_visible()
                owner.assert_clean()
