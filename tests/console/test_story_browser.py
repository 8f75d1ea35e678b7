"""The whole story of issue 11 in Chromium, as a group's volunteer and a supplier's
clerk live it: each accepts an invitation and signs in; the clerk mistypes a code
(caught in the browser, nothing sent), then redeems the real one with an evidence
PDF; the group confirms and leaves feedback; the clerk sees the claim confirmed;
another group cannot open the voucher; signing out ends the session.

Run on both databases at desktop width in English, and once more on SQLite at
360 px in French. Fields are found by their ids, so one story serves both languages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.factories.accounts import account_body
from tests.factories.browser import (
    DESKTOP,
    PHONE,
    accept_and_sign_in,
    assert_accessible,
    browsing,
    chromium,
    invite,
    live_app,
    screenshot,
)
from tests.factories.evidence import pdf
from tests.factories.programmes import programme_body
from tests.factories.redemptions import mistyped
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow


def _story(settings: Settings, tmp_path: Path, viewport: dict[str, int], locale: str) -> None:
    shots = locale.startswith("en")

    def shot(page: Any, name: str) -> None:
        if shots:
            screenshot(page, name)

    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(pdf("invoice 2027-001"))
    with live_app(settings) as live, chromium() as browser:
        group = live.api("POST", "/v1/accounts", live.admin, json=account_body("group"))
        other = live.api("POST", "/v1/accounts", live.admin, json=account_body("group"))
        supplier = live.api(
            "POST",
            "/v1/accounts",
            live.admin,
            json=account_body("supplier", supplier={"service_categories": ["leadership"]}),
        )
        funder = live.api("POST", "/v1/accounts", live.admin, json=account_body("funder"))
        funds = live.key(funder["id"])
        programme = live.api(
            "POST", "/v1/programmes", funds, json=programme_body(name="Leaders 2027")
        )
        live.api(
            "POST",
            f"/v1/programmes/{programme['id']}/deposits",
            funds,
            json={"amount": 100_000, "reference": "grant"},
        )
        live.api(
            "POST",
            f"/v1/programmes/{programme['id']}/accreditations",
            funds,
            json={"supplier_id": supplier["id"], "service_categories": ["leadership"]},
        )
        voucher = live.api(
            "POST",
            f"/v1/programmes/{programme['id']}/vouchers",
            funds,
            json={"group_id": group["id"], "amount": 40_000},
        )
        options: dict[str, Any] = {"viewport": viewport, "locale": locale, "base_url": live.url}
        with (
            browsing(browser, **options) as clerk,
            browsing(browser, **options) as volunteer,
            browsing(browser, **options) as stranger,
        ):
            accept_and_sign_in(
                clerk.page,
                invite(live, supplier["id"], "clerk@shop.example"),
                "clerk@shop.example",
                "/console/redeem",
            )
            accept_and_sign_in(
                volunteer.page,
                invite(live, group["id"], "volunteer@group.example"),
                "volunteer@group.example",
                "/console/vouchers",
            )
            accept_and_sign_in(
                stranger.page,
                invite(live, other["id"], "other@group.example"),
                "other@group.example",
                "/console/vouchers",
            )

            # The volunteer sees the voucher and its code.
            page = volunteer.page
            shot(page, "group-vouchers")
            page.locator(f"a[href='/console/vouchers/{voucher['id']}']").click()
            assert "".join(voucher["code"].split("-")) in page.locator(
                ".code-big"
            ).inner_text().replace("\n", "").replace(" ", "")
            assert_accessible(page)
            shot(page, "group-voucher")
            page.goto(f"/console/vouchers/{voucher['id']}/print")
            assert_accessible(page)
            shot(page, "group-print")

            # The clerk mistypes: caught in the browser, nothing posted.
            page = clerk.page
            posted: list[str] = []
            page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
            page.locator("#f-voucher_code").fill(mistyped(voucher["code"]))
            page.locator("#check-form button[type=submit]").click()
            page.wait_for_timeout(300)
            assert not posted
            assert "bad" in (page.locator("#code-status").get_attribute("class") or "")
            page.locator("#f-voucher_code").fill(voucher["code"])
            page.locator("#check-form button[type=submit]").click()
            page.wait_for_url("**/console/redeem/check")
            assert_accessible(page)
            page.locator("#f-amount").fill("150")
            page.locator("#f-service_category").select_option("leadership")
            page.locator("#f-description").fill("Leadership course, three evenings")
            page.locator("#f-evidence").set_input_files(str(invoice))
            page.locator("#claim-form button[type=submit]").dblclick()
            page.wait_for_url("**/console/my-claims/red_*")
            claims = live.api("GET", "/v1/redemptions", funds)["data"]
            assert len(claims) == 1, "a double click made two claims"
            claim = claims[0]
            assert (claim["amount"], claim["status"]) == (15_000, "pending")
            assert claim["evidence_files"][0]["media_type"] == "application/pdf"

            # The volunteer confirms it and leaves feedback.
            page = volunteer.page
            page.goto("/console/claims")
            assert_accessible(page)
            shot(page, "group-claims")
            page.locator(f"form[action='/console/claims/{claim['id']}/confirm'] button").click()
            page.wait_for_url("**/console/claims?notice=claim_confirmed")
            feedback = page.locator(f"form[action='/console/claims/{claim['id']}/feedback']")
            feedback.locator("input[name=rating][value='5']").check()
            feedback.locator("input[name=outcome_kind][value='process']").check()
            feedback.locator("textarea[name=outcome]").fill("The board meets monthly now")
            feedback.locator("button[type=submit]").click()
            page.wait_for_url("**/console/claims?notice=feedback_given")
            found = live.api("GET", f"/v1/redemptions/{claim['id']}", funds)
            assert found["status"] == "captured"

            # The clerk sees it confirmed.
            page = clerk.page
            page.goto(f"/console/my-claims/{claim['id']}")
            assert_accessible(page)
            shown = live.api("GET", f"/v1/redemptions/{claim['id']}", live.key(supplier["id"]))
            assert shown["status"] == "captured"
            assert page.locator(".status.captured").count() >= 1

            # Another group cannot open the voucher.
            response = stranger.page.goto(f"/console/vouchers/{voucher['id']}")
            assert response is not None
            assert response.status == 404

            # Signing out ends the session.
            page = volunteer.page
            page.locator("form[action='/console/signout'] button").click()
            page.wait_for_url("**/console/signin?notice=signed_out")
            response = page.goto(f"/console/vouchers/{voucher['id']}")
            assert page.url.endswith(f"/console/signin?next=/console/vouchers/{voucher['id']}")
            for watched in (clerk, volunteer, stranger):
                watched.assert_clean()


def test_the_story_in_english_at_desktop_width(settings: Settings, tmp_path: Path) -> None:
    _story(settings, tmp_path, DESKTOP, "en-GB")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_story_in_french_on_a_phone(settings: Settings, tmp_path: Path) -> None:
    _story(settings, tmp_path, PHONE, "fr-FR")
