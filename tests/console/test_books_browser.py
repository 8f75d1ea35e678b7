"""An auditor in Chromium: the journal filtered by kind, a transaction's postings, an
account's balance from a posting's link, the trial balance, an export downloaded and
the checkpoint file to keep. axe on every page, at desktop width in English and at
360 px in French."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
from tests.factories.people import PASSWORD
from tests.factories.programmes import programme_body
from tests.factories.redemptions import claim_body
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow

AUDITOR = "ines@audit.example"


def books(live: Live) -> dict[str, Any]:
    """A programme with a deposit, a voucher and a claim, audited by AUDITOR's account."""
    funder = live.api("POST", "/v1/accounts", live.admin, json=account_body("funder"))
    auditor = live.api("POST", "/v1/accounts", live.admin, json=account_body("auditor"))
    group = live.api("POST", "/v1/accounts", live.admin, json=account_body("group"))
    supplier = live.api(
        "POST",
        "/v1/accounts",
        live.admin,
        json=account_body("supplier", supplier={"service_categories": ["leadership"]}),
    )
    funds = live.key(funder["id"])
    programme: dict[str, Any] = live.api(
        "POST",
        "/v1/programmes",
        funds,
        json=programme_body(name="Leaders 2026", auditor_ids=[auditor["id"]]),
    )
    base = f"/v1/programmes/{programme['id']}"
    live.api("POST", f"{base}/deposits", funds, json={"amount": 100_000, "reference": "grant"})
    live.api(
        "POST",
        f"{base}/accreditations",
        funds,
        json={"supplier_id": supplier["id"], "service_categories": ["leadership"]},
    )
    voucher = live.api(
        "POST", f"{base}/vouchers", funds, json={"group_id": group["id"], "amount": 40_000}
    )
    live.api(
        "POST", "/v1/redemptions", live.key(supplier["id"]), json=claim_body(voucher["code"], 1_500)
    )
    person(live, auditor["id"], AUDITOR, "Inès Moreau")
    return programme


def _walk(settings: Settings, tmp_path: Path, viewport: dict[str, int], locale: str) -> None:
    from playwright.sync_api import expect

    shots = locale.startswith("en")
    balanced = "balanced" if shots else "équilibrée"  # the French catalogue's word
    with live_app(settings) as live, chromium() as browser:
        programme = books(live)
        with browsing(browser, viewport=viewport, locale=locale, base_url=live.url) as watched:
            page = watched.page
            page.goto("/console/signin")
            page.locator("#f-email").fill(AUDITOR)
            page.locator("#f-password").fill(PASSWORD)
            page.locator("main button[type=submit]").click()
            page.wait_for_url("**/console**")
            page.goto("/console/journal")
            assert_accessible(page)
            rows = page.locator("#journal tbody tr")
            expect(rows).to_have_count(3)  # the deposit, the issue, the hold
            if shots:
                screenshot(page, "journal")

            page.locator("#f-kind").select_option("hold")
            page.locator("form.filters button[type=submit]").click()
            page.wait_for_url("**/console/journal?*kind=hold*")
            expect(rows).to_have_count(1)
            assert_accessible(page)
            rows.first.locator("a").first.click()
            page.wait_for_url("**/console/journal/txn_*")
            assert_accessible(page)
            expect(page.locator("tfoot")).to_contain_text(balanced)
            if shots:
                screenshot(page, "transaction")

            page.locator("tbody a[href^='/console/balances']").first.click()
            page.wait_for_url("**/console/balances?account=*")
            assert_accessible(page)
            expect(page.locator("dl.facts")).to_be_visible()

            page.goto("/console/trial-balance")
            expect(page.locator("#f-programme_id")).to_have_value(programme["id"])
            expect(page.locator("tfoot")).to_contain_text(balanced)
            assert_accessible(page)

            page.goto("/console/exports")
            assert_accessible(page)
            expect(page.locator("#public-key")).to_have_text(
                live.api("GET", "/v1/audit/checkpoint", live.key(programme["funder_id"]))[
                    "public_key"
                ]
            )
            if shots:
                screenshot(page, "exports")
            page.locator("#f-csv-programme").select_option(programme["id"])
            with page.expect_download() as caught:
                page.locator("form:has(input[value=csv]) button[type=submit]").click()
            csv_file = tmp_path / caught.value.suggested_filename
            caught.value.save_as(csv_file)
            assert csv_file.name.startswith("journal-")
            assert csv_file.suffix == ".csv"
            assert "grant" in csv_file.read_text(encoding="utf-8")
            with page.expect_download() as caught:
                page.locator("a[href='/console/exports/checkpoint.json']").click()
            assert caught.value.suggested_filename == "checkpoint.json"
            watched.assert_clean()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_auditor_walks_the_books_on_a_desktop(settings: Settings, tmp_path: Path) -> None:
    _walk(settings, tmp_path, DESKTOP, "en-GB")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_auditor_walks_the_books_on_a_phone_in_french(
    settings: Settings, tmp_path: Path
) -> None:
    _walk(settings, tmp_path, PHONE, "fr-FR")
