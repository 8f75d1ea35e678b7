"""A fund manager's issuing, in the browser: a CSV of 200 vouchers with 3 bad lines
is previewed — exactly those 3 listed with their reasons, nothing issued — then the
fixed file issues all 200 at once; one voucher is revoked with a reason, one is
issued from the form after its eligibility check. At desktop width in English, and
the same pages at 360 px in French."""

from __future__ import annotations

from typing import Any

import pytest

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
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow

EMAIL = "kofi@funder.example"
BAD_LINES = (51, 102, 177)


def a_scheme(live: Live) -> tuple[str, dict[str, str], list[str]]:
    """A funder with a person, a programme with rules, 20 eligible groups and a
    political group; the programme's id, the funder's key and the groups' names."""

    def account(body: dict[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = live.api("POST", "/v1/accounts", live.admin, json=body)
        return made

    def group(name: str, kind: str = "hometown_association") -> dict[str, Any]:
        profile = {
            "group_type": kind,
            "origin_country": "GH",
            "residence_country": "NL",
            "women_led": False,
        }
        return account({"kind": "group", "name": name, "group": profile})

    funder = account({"kind": "funder", "name": "Diaspora Fund"})
    key = live.key(funder["id"])
    person(live, funder["id"], EMAIL, "Kofi Mensah")
    names = [f"Hometown Association {n:02d}" for n in range(1, 21)]
    for name in names:
        group(name)
    group("Unity Party", "political_group")
    programme = live.api(
        "POST",
        "/v1/programmes",
        key,
        json={
            "name": "Capacity 2027",
            "currency": "EUR",
            "service_categories": ["leadership", "governance"],
            "rules": {
                "eligible_group_types": ["hometown_association"],
                "max_voucher_amount": 50_000,
            },
        },
    )
    live.api(
        "POST",
        f"/v1/programmes/{programme['id']}/deposits",
        key,
        json={"amount": 10_000_000, "reference": "DEP-2027-01"},
    )
    return str(programme["id"]), key, names


def csv_file(names: list[str], *, bad: bool) -> bytes:
    lines = ["group,amount,categories,expires_at"]
    for n in range(200):
        line = len(lines) + 1
        group, amount, categories = names[n % len(names)], f"{10 + n % 7}.50", "leadership"
        if bad and line == BAD_LINES[0]:
            group = "Hometown Association 99"  # no such group
        if bad and line == BAD_LINES[1]:
            amount = "ten"
        if bad and line == BAD_LINES[2]:
            group = "Unity Party"  # not eligible: the API's check
        lines.append(f"{group},{amount},{categories},")
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


def upload(page: Any, base: str, content: bytes) -> None:
    page.goto(f"{base}/upload")
    page.locator("#f-file").set_input_files(
        {"name": "vouchers.csv", "mimeType": "text/csv", "buffer": content}
    )
    page.locator("form[action$='/upload'] button[type=submit]").click()
    page.wait_for_selector("#preview-heading")


def vouchers_of(live: Live, key: dict[str, str], programme_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"programme_id": programme_id, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = live.api("GET", "/v1/vouchers", key, params=params)
        found += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_manager_issues_two_hundred_vouchers_from_a_file(settings: Settings) -> None:
    with live_app(settings) as live, chromium() as browser:
        programme_id, key, names = a_scheme(live)
        base = f"/console/programmes/{programme_id}/vouchers"
        with browsing(browser, base_url=live.url) as watched:
            page = watched.page
            sign_in(page, EMAIL)
            page.goto(base)
            assert page.get_by_role("heading", level=1).inner_text() == "Vouchers of Capacity 2027"
            assert_accessible(page)
            page.get_by_role("link", name="Issue many from a CSV file").click()
            page.wait_for_url(f"**{base}/upload")
            assert_accessible(page)

            # The file with three bad lines: exactly those listed, nothing issued.
            upload(page, base, csv_file(names, bad=True))
            rows = page.locator("#bad-table tbody tr")
            assert rows.count() == 3
            listed = [int(rows.nth(i).locator("th").inner_text()) for i in range(3)]
            assert listed == list(BAD_LINES)
            reasons = [rows.nth(i).locator("td").first.inner_text() for i in range(3)]
            assert reasons[0] == "No group has this id or name."
            assert reasons[1].startswith("Write the amount with digits")
            assert reasons[2].startswith("The group is not eligible")
            assert page.locator("#count-ok").inner_text() == "197"
            assert page.get_by_role("button", name="Issue all").count() == 0
            assert_accessible(page)
            screenshot(page, "vouchers-upload-preview")
            assert vouchers_of(live, key, programme_id) == []

            # The fixed file: every line passes, and one click issues all 200.
            upload(page, base, csv_file(names, bad=False))
            assert page.locator("#count-ok").inner_text() == "200"
            assert_accessible(page)
            page.get_by_role("button", name="Issue all 200 vouchers").click()
            page.wait_for_url(f"**{base}?issued=200&notice=vouchers_issued")
            assert page.get_by_role("status").inner_text() == "The vouchers are issued."
            issued = vouchers_of(live, key, programme_id)
            assert len(issued) == 200
            assert page.get_by_role("heading", name="200 vouchers").is_visible()
            assert page.locator("table tbody tr").count() == 50  # a page
            assert page.get_by_text("Page 1 of 4", exact=True).is_visible()
            assert_accessible(page)
            screenshot(page, "vouchers")

            # Search by a group's name, then revoke one of its vouchers with a reason.
            page.get_by_label("Search").fill("Association 07")
            page.get_by_role("button", name="Show these vouchers").click()
            page.wait_for_url("**q=Association+07*")
            assert page.locator("table tbody tr").count() == 10
            page.locator("table tbody tr a").first.click()
            page.wait_for_url(f"**{base}/vch_*")
            assert_accessible(page)
            page.get_by_role("button", name="Revoke the voucher").click()  # no reason
            assert page.get_by_label("Reason").evaluate("e => e.validity.valueMissing")
            page.get_by_label("Reason").fill("Issued twice by mistake")
            page.get_by_role("button", name="Revoke the voucher").click()
            page.wait_for_url("**notice=voucher_revoked")
            revoked = [v for v in vouchers_of(live, key, programme_id) if v["status"] == "revoked"]
            assert len(revoked) == 1

            # Issue one: the eligibility shown after "Check", then issued.
            page.goto(f"{base}/new")
            page.get_by_label("Group").select_option(label="Unity Party")
            page.get_by_label("Amount (EUR)").fill("120")
            page.get_by_role("button", name="Check").click()
            page.wait_for_selector("#eligibility")
            assert "not eligible" in page.locator("#eligibility").inner_text()
            assert_accessible(page)
            page.get_by_label("Group").select_option(label=names[0])
            page.get_by_role("button", name="Check").click()
            page.wait_for_selector("#eligibility")
            assert "can be issued now" in page.locator("#eligibility").inner_text()
            assert_accessible(page)
            page.get_by_role("button", name="Issue the voucher").click()
            page.wait_for_url(f"**{base}/vch_*notice=voucher_issued")
            assert len(vouchers_of(live, key, programme_id)) == 201
            watched.assert_clean()

        # The same pages at 360 px, in French.
        with browsing(browser, base_url=live.url, viewport=PHONE, locale="fr-FR") as watched:
            page = watched.page
            sign_in(page, EMAIL)
            assert page.evaluate("() => document.documentElement.lang") == "fr"
            for address in (base, f"{base}/upload", f"{base}/new"):
                page.goto(address)
                assert_accessible(page)
                width = page.evaluate("() => document.documentElement.scrollWidth")
                assert width <= PHONE["width"], (address, width)
            upload(page, base, csv_file(names, bad=True))
            assert page.locator("#bad-table tbody tr").count() == 3
            assert_accessible(page)
            page.goto(f"{base}/{issued[0]['id']}")
            assert_accessible(page)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
            watched.assert_clean()
