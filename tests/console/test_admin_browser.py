"""The admin onboards a group and a supplier from the browser: creates both accounts,
invites each one's first owner and copies the link shown once; each invitee opens its
link in its own browser, sets a password and signs in to its own start page; the
admin sees them active, lists the keys and revokes one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories.browser import (
    Live,
    assert_accessible,
    browsing,
    chromium,
    live_app,
    person,
    screenshot,
)
from tests.factories.people import PASSWORD
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "sam@scheme.example"


def admin_owner(live: Live) -> None:
    """An owner of the admin account, with PASSWORD (invited and accepted by API)."""
    account = live.api("GET", "/v1/me", live.admin)
    person(live, account["id"], ADMIN_EMAIL, "Sam Jansen")


def sign_in(page: Any, email: str) -> None:
    page.goto("/console/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def create_account(page: Any, kind: str, name: str, fill: Any) -> str:
    """From the accounts page: the new account's form, filled and sent; its id."""
    page.goto("/console/admin/accounts")
    page.get_by_label("Kind of account").select_option(kind)
    page.get_by_role("button", name="Create an account").click()
    page.wait_for_url(f"**/console/admin/accounts/new?kind={kind}")
    assert_accessible(page)
    page.get_by_label("Name of the account").fill(name)
    fill(page)
    page.get_by_role("button", name="Create the account").click()
    page.wait_for_url("**/console/admin/accounts/acc_*?notice=account_created")
    assert page.get_by_role("heading", level=1).inner_text() == name
    return str(page.url.rsplit("/", 1)[1].split("?")[0])


def invite_first_owner(page: Any, name: str, email: str, shot: str | None = None) -> str:
    """On the account's page: invite, copy the link shown once; the link."""
    from playwright.sync_api import expect  # imported once a browser is known to be there

    assert page.get_by_role("heading", name="Invite the first owner").is_visible()
    page.get_by_label("Their name").fill(name)
    page.get_by_label("Their email").fill(email)
    assert page.get_by_label("Role").input_value() == "owner"
    page.get_by_role("button", name="Invite and show the link").click()
    page.wait_for_selector("#invite-link")
    link = str(page.get_by_label("Invitation link").input_value())
    assert "/console/invite?token=vlinv_" in link
    page.get_by_role("button", name="Copy the link").click()
    expect(page.get_by_role("status")).to_have_text("The link is copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    assert_accessible(page)
    if shot:
        screenshot(page, shot)
    page.get_by_role("link", name="Back to the account").click()
    # The link is not on the account's page: it was shown once.
    assert link.split("token=")[1] not in page.content()
    return link


def accept_and_sign_in(browser: Any, live: Live, link: str, email: str, home: str) -> None:
    """The invitee, in its own browser: the link, a password, sign-in, its start page."""
    with browsing(browser, base_url=live.url) as watched:
        page = watched.page
        page.goto(link)
        page.get_by_label("New password").fill(PASSWORD)
        page.get_by_label("The same password again").fill(PASSWORD)
        page.get_by_role("button", name="Set my password").click()
        page.wait_for_url("**/console/signin?notice=invite_accepted")
        sign_in(page, email)
        page.wait_for_url(f"**{home}")
        # The party's own pages are built elsewhere: here only where it lands.
        landed = page.goto(home)
        assert landed is not None
        assert landed.status in (200, 404), landed.status
        watched.assert_clean()


def test_the_admin_onboards_a_group_and_a_supplier(settings: Settings) -> None:
    with live_app(settings) as live, chromium() as browser:
        admin_owner(live)
        with browsing(
            browser, base_url=live.url, permissions=["clipboard-read", "clipboard-write"]
        ) as watched:
            page = watched.page
            sign_in(page, ADMIN_EMAIL)
            page.wait_for_url("**/console/admin/accounts")
            assert page.get_by_role("heading", level=1).inner_text() == "Accounts"
            assert_accessible(page)

            def group_profile(page: Any) -> None:
                page.get_by_label("Type of group").select_option("hometown_association")
                page.get_by_label("Country of origin").select_option("GH")
                page.get_by_label("Country where it works").select_option("NL")
                page.get_by_label("Led by women").check()

            group_id = create_account(page, "group", "Kumasi Hometown Association", group_profile)
            assert_accessible(page)
            group_link = invite_first_owner(
                page, "Ama Owusu", "ama@kumasi.example", shot="admin-invite-link"
            )

            def supplier_profile(page: Any) -> None:
                page.get_by_label("Country (where it is registered)").select_option("NL")
                page.get_by_label("Leadership").check()
                page.get_by_label("Governance").check()

            supplier_id = create_account(page, "supplier", "Civic Skills Academy", supplier_profile)
            supplier_link = invite_first_owner(page, "Lotte de Vries", "lotte@civic.example")

            page.goto("/console/admin/accounts")
            for name in ("Kumasi Hometown Association", "Civic Skills Academy"):
                assert page.get_by_role("link", name=name).is_visible()
            screenshot(page, "admin-accounts")

            accept_and_sign_in(browser, live, group_link, "ama@kumasi.example", "/console/vouchers")
            accept_and_sign_in(
                browser, live, supplier_link, "lotte@civic.example", "/console/redeem"
            )

            # A machine key of the supplier's, made over the API, to revoke.
            key = live.api("POST", f"/v1/accounts/{supplier_id}/keys", live.admin)
            page.goto(f"/console/admin/accounts/{group_id}")
            assert page.get_by_role("row", name="Ama Owusu").get_by_text("Active").is_visible()
            page.goto(f"/console/admin/accounts/{supplier_id}")
            assert page.get_by_role("row", name="Lotte de Vries").get_by_text("Active").is_visible()
            row = page.get_by_role("row", name=key["id"])
            assert row.get_by_text("The account (a machine)").is_visible()
            assert row.get_by_text("Works").is_visible()
            assert_accessible(page)
            screenshot(page, "admin-account")
            row.get_by_role("link", name=f"Revoke key {key['id']}").click()
            assert_accessible(page)
            # The first step changes nothing.
            assert live.http.get("/v1/me", headers=_bearer(key["key"])).status_code == 200
            page.get_by_role("button", name="Revoke this key now").click()
            page.wait_for_url(f"**/console/admin/accounts/{supplier_id}?notice=key_revoked")
            assert page.get_by_role("status").inner_text() == (
                "The key is revoked: it no longer works."
            )
            assert page.get_by_role("row", name=key["id"]).get_by_text("Revoked").is_visible()
            assert live.http.get("/v1/me", headers=_bearer(key["key"])).status_code == 401
            watched.assert_clean()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
