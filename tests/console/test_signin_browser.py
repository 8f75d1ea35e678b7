"""Signing in from the browser: an invited person sets a password from the link,
signs in, lands on the account's start page and signs out; the pages load nothing
the CSP refuses and have no serious accessibility faults, in English and French."""

from __future__ import annotations

import pytest

from tests.factories.accounts import account_body
from tests.factories.browser import PHONE, assert_accessible, browsing, chromium, live_app
from tests.factories.people import PASSWORD
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow


def test_an_invited_owner_sets_a_password_signs_in_and_out(settings: Settings) -> None:
    with live_app(settings) as live, chromium() as browser:
        funder = live.api("POST", "/v1/accounts", live.admin, json=account_body("funder"))
        invited = live.api(
            "POST",
            f"/v1/accounts/{funder['id']}/members",
            live.admin,
            json={"email": "owner@fund.example", "name": "Ama Owusu", "role": "owner"},
        )
        with browsing(browser, base_url=live.url) as watched:
            page = watched.page
            page.goto(f"/console/invite?token={invited['invite_token']}")
            assert_accessible(page)
            page.get_by_label("New password").fill(PASSWORD)
            page.get_by_label("The same password again").fill(PASSWORD)
            page.get_by_role("button", name="Set my password").click()
            page.wait_for_url("**/console/signin?notice=invite_accepted")
            assert page.get_by_role("status").inner_text() == (
                "Your password is set. Sign in to continue."
            )
            assert_accessible(page)
            page.get_by_label("Email").fill("owner@fund.example")
            page.get_by_label("Password").fill("not the password at all")
            page.get_by_role("button", name="Sign in").click()
            assert (
                page.get_by_role("alert")
                .inner_text()
                .startswith("The email or the password is wrong.")
            )
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            # A funder's home is its programmes.
            page.wait_for_url("**/console/programmes")
            assert page.locator(".account").inner_text().endswith(funder["name"])
            assert_accessible(page)
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url("**/console/signin?notice=signed_out")
            page.goto("/console")
            assert page.url.endswith("/console/signin")
            watched.assert_clean()


def test_the_sign_in_page_in_french_at_phone_width(settings: Settings) -> None:
    with live_app(settings) as live, chromium() as browser:
        with browsing(browser, viewport=PHONE, locale="fr-FR", base_url=live.url) as watched:
            page = watched.page
            page.goto("/console/signin")
            assert page.locator("html").get_attribute("lang") == "fr"
            assert page.get_by_role("heading", level=1).inner_text() == "Connexion"
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], "the page scrolls sideways on a phone"
            assert_accessible(page)
            page.get_by_role("link", name="English").click()
            assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
            watched.assert_clean()
