"""The whole scheme of issue 12 in Chromium, as a funder's people and an auditor live
it: the funder's owner invites a programme officer and an approver from the members
page; the approver turns on two-step sign-in; the officer creates a two-person
programme, deposits, accredits a supplier, uploads a CSV of 200 vouchers with three
bad lines (the preview lists exactly those, nothing is issued), fixes the file and
issues all 200; suppliers' claims arrive through the API; the officer proposes the
settlement and sees no approve button, the approver approves it; the dashboard's
figures equal the API's balances; the auditor downloads the jsonl export, the page's
verifier accepts it and refuses a copy with one byte changed at the line the offline
verifier names.

Run on both databases at desktop width in English, and on SQLite at 360 px in
French. Fields are found by their ids, so one story serves both languages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from tests.factories.accounts import account_body
from tests.factories.browser import (
    DESKTOP,
    PHONE,
    Live,
    accept_and_sign_in,
    assert_accessible,
    browsing,
    chromium,
    invite,
    live_app,
    screenshot,
)
from voucherledger.console.templating import environment
from voucherledger.core.settings import Settings
from voucherledger.ledger.verify import verify_lines

pytestmark = pytest.mark.slow

GROUPS = 20
VOUCHERS = 200
BAD_LINES = (41, 118, 187)  # line 1 is the header
IBAN = "NL91ABNA0417164300"
BALANCES = (
    "deposited",
    "unissued",
    "unissued_women_led_reserve",
    "outstanding",
    "held",
    "payable",
    "settled",
    "returned_to_funder",
)


def _csv(names: list[str], *, bad: bool) -> bytes:
    """200 vouchers of 40.00 to 50.00 over the groups; with ``bad``, three lines the
    preview must refuse: a group nobody has, an amount in words, a past expiry."""
    lines = ["group,amount,categories,expires_at"]
    for n in range(VOUCHERS):
        line = len(lines) + 1
        group, amount, expiry = names[n % len(names)], f"{40 + n % 11}.00", ""
        if bad and line == BAD_LINES[0]:
            group = "Nobody's Association"
        if bad and line == BAD_LINES[1]:
            amount = "forty"
        if bad and line == BAD_LINES[2]:
            expiry = "2001-01-01"
        lines.append(f"{group},{amount},leadership,{expiry}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _scheme(live: Live) -> dict[str, Any]:
    """What the scheme admin sets up: the accounts, and a first owner for the funder
    and the auditor (invitations: the people choose their passwords in the browser)."""

    def account(body: dict[str, Any]) -> dict[str, Any]:
        return dict(live.api("POST", "/v1/accounts", live.admin, json=body))

    funder = account(account_body("funder", "Agency for Diaspora Cooperation"))
    auditor = account(account_body("auditor", "Public Funds Audit Office"))
    supplier = account(
        account_body(
            "supplier", "Civic Skills Academy", supplier={"service_categories": ["leadership"]}
        )
    )
    shop = live.key(supplier["id"])
    live.api(
        "PATCH", f"/v1/accounts/{supplier['id']}/supplier-profile", shop, json={"payout_iban": IBAN}
    )
    names = [f"Hometown Association {n:02d}" for n in range(1, GROUPS + 1)]
    for name in names:
        account(account_body("group", name))
    return {
        "funder": funder,
        "auditor": auditor,
        "supplier": supplier,
        "shop": shop,
        "names": names,
        "owner_token": invite(live, funder["id"], "owner@agency.example"),
        "auditor_token": invite(live, auditor["id"], "auditor@audit.example"),
    }


def _invite_from_the_members_page(page: Any, name: str, email: str, role: str) -> str:
    """The owner invites a person; the link shown once carries the token."""
    page.goto("/console/members")
    page.locator("form[action='/console/members'] input[name=name]").fill(name)
    page.locator("form[action='/console/members'] input[name=email]").fill(email)
    page.locator("form[action='/console/members'] select[name=role]").select_option(role)
    page.locator("form[action='/console/members'] button[type=submit]").click()
    link = page.locator("#invite-link").input_value()
    assert_accessible(page)
    return str(parse_qs(urlsplit(link).query)["token"][0])


def _turn_on_two_step(page: Any) -> None:
    page.goto("/console/me/totp")
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.locator("#f-code").fill(pyotp.TOTP(secret).now())
    page.locator("form[action='/console/me/totp'] button[type=submit]").click()
    page.wait_for_url("**notice=*")
    assert_accessible(page)


def _story(settings: Settings, tmp_path: Path, viewport: dict[str, int], locale: str) -> None:
    shots = locale.startswith("en")
    money = environment(locale.split("-")[0]).filters["money"]

    def check(page: Any) -> None:
        """axe finds nothing serious, and nothing is wider than the screen."""
        assert_accessible(page)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= viewport["width"], (page.url, width)

    def shot(page: Any, name: str) -> None:
        if shots:
            screenshot(page, name)

    with live_app(settings) as live, chromium() as browser:
        s = _scheme(live)
        funds = live.key(s["funder"]["id"])  # the test's own eyes on the API
        options: dict[str, Any] = {"viewport": viewport, "locale": locale, "base_url": live.url}
        with (
            browsing(browser, **options) as owner,
            browsing(browser, **options) as officer,
            browsing(browser, **options) as approver,
            browsing(browser, **options) as auditor,
        ):
            # The owner invites an officer and an approver; each accepts and signs in.
            accept_and_sign_in(
                owner.page, s["owner_token"], "owner@agency.example", "/console/programmes"
            )
            officer_token = _invite_from_the_members_page(
                owner.page, "Pieter Bakker", "officer@agency.example", "operator"
            )
            shot(owner.page, "scheme-members")
            approver_token = _invite_from_the_members_page(
                owner.page, "Fatima El Amrani", "approver@agency.example", "approver"
            )
            accept_and_sign_in(
                officer.page, officer_token, "officer@agency.example", "/console/programmes"
            )
            accept_and_sign_in(
                approver.page, approver_token, "approver@agency.example", "/console/programmes"
            )
            _turn_on_two_step(approver.page)

            # The officer creates a two-person programme that names the auditor.
            page = officer.page
            page.goto("/console/programmes/new")
            page.locator("#f-name").fill("Diaspora Capacity 2027")
            page.locator("#f-currency").select_option("EUR")
            page.locator("#f-service_categories-leadership").check()
            page.locator("#f-service_categories-governance").check()
            page.locator("#f-max_voucher_amount").fill("500")
            page.locator("#f-requires_group_confirmation-no").check()
            page.locator("#f-settlement_approval-two_person").check()
            page.locator("#f-auditor_ids").fill(s["auditor"]["id"])
            page.locator("form[action='/console/programmes/new'] button[type=submit]").click()
            page.wait_for_url("**/console/programmes/prg_*?notice=programme_created")
            pid = urlsplit(page.url).path.rsplit("/", 1)[1]
            programme = live.api("GET", f"/v1/programmes/{pid}", funds)
            assert programme["rules"]["settlement_approval"] == "two_person"
            assert programme["auditor_ids"] == [s["auditor"]["id"]]

            page.locator("#f-amount").fill("20,000.00")
            page.locator("#f-reference").fill("SEPA 2027-01 first tranche")
            page.locator("form[action$='/deposit'] button[type=submit]").click()
            page.wait_for_url("**notice=deposit_made")

            page.goto(f"/console/programmes/{pid}/suppliers")
            page.locator("#f-supplier_id").select_option(s["supplier"]["id"])
            page.locator("#f-cat-leadership").check()
            page.locator(f"form[action='/console/programmes/{pid}/suppliers'] button").click()
            page.wait_for_url("**notice=supplier_accredited")
            check(page)

            # The CSV with three bad lines: exactly those are listed, nothing issued.
            page.goto(f"/console/programmes/{pid}/vouchers/upload")
            upload = tmp_path / "vouchers.csv"
            upload.write_bytes(_csv(s["names"], bad=True))
            page.locator("#f-file").set_input_files(str(upload))
            page.locator("form[action$='/upload'] button[type=submit]").click()
            rows = page.locator("#bad-table tbody tr")
            rows.first.wait_for()
            assert [int(rows.nth(i).locator("th").inner_text()) for i in range(rows.count())] == (
                list(BAD_LINES)
            )
            assert page.locator("form[action$='/vouchers/batch']").count() == 0
            check(page)
            shot(page, "scheme-upload-preview")
            assert live.api("GET", f"/v1/vouchers?programme_id={pid}", funds)["data"] == []

            # The fixed file: all 200 in one batch.
            upload.write_bytes(_csv(s["names"], bad=False))
            page.locator("#f-file").set_input_files(str(upload))
            page.locator("form[action$='/upload'] button[type=submit]").click()
            page.locator("form[action$='/vouchers/batch'] button[type=submit]").click()
            page.wait_for_url("**notice=vouchers_issued")
            issued = live.api(
                "GET", f"/v1/vouchers?programme_id={pid}&limit=200", live.key(s["funder"]["id"])
            )["data"]
            assert len(issued) == VOUCHERS
            assert sum(v["amount"] for v in issued) == sum(
                (40 + n % 11) * 100 for n in range(VOUCHERS)
            )

            # Claims arrive from the supplier's own system, through the API.
            for voucher in issued[:5]:
                live.api(
                    "POST",
                    "/v1/redemptions",
                    s["shop"],
                    json={
                        "voucher_code": voucher["code"],
                        "amount": 3_000,
                        "service_category": "leadership",
                        "description": "Board leadership evening",
                    },
                )

            # The officer proposes the settlement: no approve button for the proposer.
            page.goto(f"/console/programmes/{pid}/settlements")
            check(page)
            shot(page, "scheme-settlements")
            propose = page.locator(f"form[action='/console/programmes/{pid}/settlements']")
            propose.locator("input[name=payout_reference]").fill("SEPA payout 2027-Q1 CSA")
            propose.locator("button[type=submit]").click()
            page.wait_for_url("**/console/payouts/stl_*?notice=settlement_proposed")
            settlement_path = urlsplit(page.url).path
            assert page.locator("form[action$='/approve']").count() == 0
            check(page)

            # The approver finds it among the approvals and approves it.
            other = approver.page
            other.goto("/console/approvals")
            check(other)
            other.locator(f"a[href='{settlement_path}']").click()
            other.wait_for_url(f"**{settlement_path}")
            assert other.get_by_text(IBAN).count() >= 1
            check(other)
            shot(other, "scheme-approve")
            other.locator("form[action$='/approve'] button[type=submit]").click()
            other.wait_for_url("**notice=settlement_approved")
            settlement = live.api(
                "GET", f"/v1/settlements/{settlement_path.rsplit('/', 1)[1]}", funds
            )
            assert settlement["status"] == "settled"
            assert settlement["amount"] == 15_000

            # The dashboard's figures are the API's balances.
            page.goto(f"/console/programmes/{pid}")
            balances = live.api("GET", f"/v1/programmes/{pid}", funds)["balances"]
            assert balances["settled"] == 15_000
            for name in BALANCES:
                shown = page.locator(f"#balance-{name}").inner_text()
                assert money(balances[name], "EUR") in shown, (name, shown, balances[name])
            check(page)
            shot(page, "scheme-dashboard")

            # The auditor downloads the jsonl export and checks it in the page.
            page = auditor.page
            accept_and_sign_in(
                page, s["auditor_token"], "auditor@audit.example", "/console/programmes"
            )
            page.goto("/console/exports")
            page.locator("#f-jsonl-programme").select_option(pid)
            with page.expect_download() as caught:
                page.locator("form:has(input[value=jsonl]) button[type=submit]").click()
            export = tmp_path / "journal.jsonl"
            caught.value.save_as(export)
            with export.open(encoding="utf-8") as handle:
                assert verify_lines(handle).ok
            page.goto("/console/verify")
            assert _verdict(page, export) == ("valid", None)
            check(page)
            shot(page, "scheme-verify")

            # One byte changed in a posting's amount: refused at the line Python names.
            lines = export.read_bytes().split(b"\n")
            at = next(i for i, line in enumerate(lines) if b'"amount":3000' in line)
            lines[at] = lines[at].replace(b'"amount":3000', b'"amount":3001', 1)
            tampered = tmp_path / "journal-tampered.jsonl"
            tampered.write_bytes(b"\n".join(lines))
            with tampered.open(encoding="utf-8") as handle:
                python = verify_lines(handle)
            assert not python.ok
            assert python.line == at + 1
            assert _verdict(page, tampered) == ("invalid", python.line)
            check(page)

            for watched in (owner, officer, approver, auditor):
                watched.assert_clean()


def _verdict(page: Any, path: Path) -> tuple[str | None, int | None]:
    """The page's verdict on a file and its first faulty line, once it has run."""
    result = page.locator("#verify-result")
    before = result.get_attribute("data-run") or "0"
    page.locator("#f-export").set_input_files(str(path))
    page.locator("#verify-button").click()
    page.wait_for_function(
        "(before) => (document.getElementById('verify-result').dataset.run || '0') !== before",
        arg=before,
    )
    line = result.get_attribute("data-line")
    return result.get_attribute("data-verdict"), int(line) if line else None


def test_the_whole_scheme_in_the_browser(settings: Settings, tmp_path: Path) -> None:
    _story(settings, tmp_path, DESKTOP, "en-GB")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_whole_scheme_on_a_phone_in_french(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    _story(settings, tmp_path, PHONE, "fr-FR")
