"""A funder in Chromium: accredits a supplier for one category, suspends another in
two steps, reads a supplier's claims and ratings and the programme's report with its
charts; then the same pages at 360 px in French. axe on every page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories.accounts import account_body
from tests.factories.browser import (
    PHONE,
    Live,
    assert_accessible,
    browsing,
    chromium,
    live_app,
    person,
    screenshot,
    sign_in,
)
from tests.factories.programmes import programme_body
from tests.factories.redemptions import claim_body
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow

FUNDER = "amara@fund.example"


@dataclass
class Scheme:
    programme_id: str
    funder_key: dict[str, str]
    supplier_id: str  # accredited, with a confirmed and rated claim
    newcomer_id: str  # not yet accredited


def scheme(live: Live) -> Scheme:
    funder = live.api("POST", "/v1/accounts", live.admin, json=account_body("funder"))
    group = live.api(
        "POST",
        "/v1/accounts",
        live.admin,
        json=account_body("group", "Dakar Women's Circle", group={"women_led": True}),
    )
    supplier = live.api(
        "POST",
        "/v1/accounts",
        live.admin,
        json=account_body(
            "supplier",
            "Kumasi Trainers",
            supplier={"service_categories": ["leadership", "governance"]},
        ),
    )
    newcomer = live.api(
        "POST",
        "/v1/accounts",
        live.admin,
        json=account_body(
            "supplier", "Open Door Digital", supplier={"service_categories": ["leadership"]}
        ),
    )
    funds = live.key(funder["id"])
    programme = live.api("POST", "/v1/programmes", funds, json=programme_body(name="Leaders 2026"))
    pid = programme["id"]
    live.api(
        "POST", f"/v1/programmes/{pid}/deposits", funds, json={"amount": 100_000, "reference": "g"}
    )
    live.api(
        "POST",
        f"/v1/programmes/{pid}/accreditations",
        funds,
        json={"supplier_id": supplier["id"], "service_categories": ["leadership", "governance"]},
    )
    voucher = live.api(
        "POST",
        f"/v1/programmes/{pid}/vouchers",
        funds,
        json={"group_id": group["id"], "amount": 50_000},
    )
    made = live.api(
        "POST",
        "/v1/redemptions",
        live.key(supplier["id"]),
        json=claim_body(voucher["code"], 20_000, "leadership"),
    )
    groups = live.key(group["id"])
    live.api("POST", f"/v1/redemptions/{made['id']}/confirm", groups)
    live.api(
        "POST",
        f"/v1/redemptions/{made['id']}/feedback",
        groups,
        json={"rating": 4, "outcome": "A board that meets", "outcome_kind": "process"},
    )
    person(live, funder["id"], FUNDER, "Amara Diallo")
    return Scheme(pid, funds, supplier["id"], newcomer["id"])


def fits(page: Any) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_funder_accredits_suspends_and_reads_the_report(settings: Settings, backend: str) -> None:
    with live_app(settings) as live, chromium() as browser:
        s = scheme(live)
        suppliers = f"/console/programmes/{s.programme_id}/suppliers"
        with browsing(browser, base_url=live.url) as watched:
            page = watched.page
            sign_in(page, FUNDER, lambda url: "/console/signin" not in url)
            page.goto(suppliers)
            assert page.get_by_role("heading", level=1).inner_text() == "Leaders 2026: suppliers"
            assert_accessible(page)
            screenshot(page, "suppliers")

            page.get_by_label("Supplier", exact=True).select_option(s.newcomer_id)
            page.get_by_label("Leadership").check()
            page.get_by_role("button", name="Accredit the supplier").click()
            page.wait_for_url(f"**{suppliers}?notice=supplier_accredited")
            row = page.get_by_role("row", name="Open Door Digital")
            assert row.get_by_text("Accredited").is_visible()
            assert_accessible(page)

            page.get_by_role("link", name="Suspend Kumasi Trainers").click()
            page.wait_for_url(f"**{suppliers}/{s.supplier_id}/suspend")
            assert_accessible(page)
            page.get_by_role("button", name="Suspend this supplier now").click()
            page.wait_for_url(f"**{suppliers}?notice=supplier_suspended")
            assert page.get_by_role("status").inner_text() == (
                "The supplier is suspended: its new claims are refused."
            )
            row = page.get_by_role("row", name="Kumasi Trainers")
            assert row.get_by_text("Suspended").is_visible()
            listed = live.api("GET", f"/v1/programmes/{s.programme_id}/suppliers", s.funder_key)
            assert {x["supplier_id"]: x["status"] for x in listed} == {
                s.supplier_id: "suspended",
                s.newcomer_id: "active",
            }

            row.get_by_role("link", name="Kumasi Trainers").click()
            page.wait_for_url(f"**{suppliers}/{s.supplier_id}")
            assert "4.00 of 5" in page.content()
            assert page.get_by_role("cell", name="€200.00").first.is_visible()
            assert_accessible(page)
            screenshot(page, "supplier")

            page.get_by_role("link", name="Report").click()
            page.wait_for_url(f"**/console/programmes/{s.programme_id}/report")
            assert page.locator(".chart-bars").count() == 5
            assert page.get_by_role("row", name="Women-led groups").first.is_visible()
            with page.expect_download() as download:
                page.get_by_role("link", name="Download the report (CSV)").click()
            assert download.value.suggested_filename == f"report-{s.programme_id}.csv"
            assert_accessible(page)
            screenshot(page, "report")
            watched.assert_clean()

        with browsing(browser, base_url=live.url, viewport=PHONE, locale="fr-FR") as watched:
            page = watched.page
            sign_in(page, FUNDER, lambda url: "/console/signin" not in url)
            for path in (
                suppliers,
                f"{suppliers}/{s.newcomer_id}/suspend",
                f"{suppliers}/{s.supplier_id}",
                f"/console/programmes/{s.programme_id}/report",
            ):
                page.goto(path)
                assert page.locator("html").get_attribute("lang") == "fr"
                assert_accessible(page)
                fits(page)
            assert "Sénégal" in page.content() or "Ghana" in page.content()
            screenshot(page, "report-phone-fr")
            watched.assert_clean()
