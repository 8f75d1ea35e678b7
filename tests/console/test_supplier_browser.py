"""A supplier's clerk in Chromium: a mistyped code caught in the browser (nothing is
sent), a real one checked and claimed with a PDF, a double submit that makes one
claim, a claim cancelled; and the group's QR code read by the camera (Chromium's fake
camera playing a video made here from the QR of a voucher's console URL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import segno

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
from tests.factories.evidence import pdf
from tests.factories.programmes import programme_body
from tests.factories.redemptions import claim_body, mistyped
from voucherledger.core.settings import Settings

pytestmark = pytest.mark.slow

CLERK = "clerk@shop.example"


@dataclass
class Scheme:
    """A programme with a funded voucher, and a supplier accredited in it whose owner
    (``CLERK``) has accepted an invitation."""

    supplier_id: str
    supplier_key: dict[str, str]
    voucher: dict[str, Any]


def scheme(live: Live) -> Scheme:
    funder = live.api("POST", "/v1/accounts", live.admin, json=account_body("funder"))
    group = live.api("POST", "/v1/accounts", live.admin, json=account_body("group"))
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
    funds = live.key(funder["id"])
    programme = live.api("POST", "/v1/programmes", funds, json=programme_body(name="Leaders 2026"))
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
        json={"supplier_id": supplier["id"], "service_categories": ["leadership", "governance"]},
    )
    voucher = live.api(
        "POST",
        f"/v1/programmes/{programme['id']}/vouchers",
        funds,
        json={"group_id": group["id"], "amount": 50_000},
    )
    person(live, supplier["id"], CLERK, "Kofi Mensah")
    return Scheme(supplier["id"], live.key(supplier["id"]), voucher)


def claims_of(live: Live, s: Scheme) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = live.api("GET", "/v1/redemptions", s.supplier_key)["data"]
    return found


def test_a_clerk_redeems_a_voucher_with_a_pdf_once(settings: Settings, tmp_path: Path) -> None:
    invoice = tmp_path / "invoice-14.pdf"
    invoice.write_bytes(pdf("invoice 14"))
    with live_app(settings) as live, chromium() as browser:
        s = scheme(live)
        other = live.api(
            "POST",
            "/v1/redemptions",
            s.supplier_key,
            json=claim_body(s.voucher["code"], 700, description="Made by mistake"),
        )
        with browsing(browser, base_url=live.url) as watched:
            page = watched.page
            sign_in(page, CLERK, "**/console/redeem")
            posted: list[str] = []
            page.on(
                "request",
                lambda r: posted.append(r.url) if r.method == "POST" else None,
            )
            assert_accessible(page)
            screenshot(page, "supplier-redeem")

            # One character wrong: the browser says so and sends nothing.
            code_field = page.get_by_label("Voucher code")
            code_field.fill(mistyped(s.voucher["code"]))
            status = page.locator("#code-status")
            assert status.inner_text() == "This code has a typo: check each character."
            page.get_by_role("button", name="Check the code").click()
            page.wait_for_timeout(300)
            assert page.url.endswith("/console/redeem")
            assert not [url for url in posted if url.endswith("/console/redeem/check")]

            code_field.fill(s.voucher["code"].lower())
            assert status.inner_text() == "The code is well formed."
            page.get_by_role("button", name="Check the code").click()
            page.wait_for_url("**/console/redeem/check")
            facts = page.locator("dl.facts").inner_text()
            assert "Leaders 2026" in facts, facts
            assert "€493.00" in facts, facts
            assert "Leadership, Governance" in facts
            assert_accessible(page)
            screenshot(page, "supplier-claim-form")

            # The same form sent twice, as a double click past the script would: one claim.
            fields = page.evaluate(
                """() => Object.fromEntries([...document.querySelectorAll(
                    '#claim-form input[type=hidden]')].map(i => [i.name, i.value]))"""
            )
            twice = [
                page.request.post(
                    "/console/redeem/claim",
                    multipart={
                        **fields,
                        "amount": "3",
                        "service_category": "governance",
                        "description": "Bylaws workshop",
                        "evidence": {
                            "name": "sheet.pdf",
                            "mimeType": "application/pdf",
                            "buffer": pdf("sheet"),
                        },
                    },
                    max_redirects=0,
                )
                for _ in range(2)
            ]
            assert [r.status for r in twice] == [303, 303]
            assert twice[0].headers["location"] == twice[1].headers["location"]
            assert len(claims_of(live, s)) == 2

            # The claim itself, through a fresh form (that one's key is spent).
            page.get_by_role("button", name="Check the code").click()
            page.wait_for_load_state()
            assert "€490.00" in page.locator("dl.facts").inner_text()
            page.get_by_label("Amount in EUR").fill("12,50")
            page.get_by_label("Category").select_option("leadership")
            page.get_by_label("What was delivered").fill("Board training, two days")
            page.get_by_label("Evidence files").set_input_files(str(invoice))
            page.get_by_role("button", name="Send the claim").click()
            page.wait_for_url("**/console/my-claims/red_*")
            assert page.get_by_role("status").first.inner_text() == "Your claim is made."
            assert "Waiting for the group" in page.locator("dl.facts").inner_text()
            assert page.get_by_role("link", name="File 1").get_attribute("href", timeout=1000)
            assert_accessible(page)
            made = [c for c in claims_of(live, s) if c["amount"] == 1250]
            assert len(made) == 1
            assert len(made[0]["evidence_files"]) == 1
            assert made[0]["evidence_files"][0]["media_type"] == "application/pdf"

            # Cancel the claim made by mistake, from the list of pending claims.
            page.get_by_role("link", name="My claims", exact=True).click()
            page.get_by_label("Show").select_option("pending")
            page.wait_for_url("**/console/my-claims?status=pending")
            assert page.locator("#claims tbody tr").count() == 3
            assert_accessible(page)
            screenshot(page, "supplier-claims")
            page.get_by_role("link", name="Made by mistake").click()
            page.get_by_role("button", name="Cancel this claim").click()
            page.wait_for_url(f"**/console/my-claims/{other['id']}?notice=claim_cancelled")
            assert "Cancelled or refused" in page.locator("dl.facts").inner_text()
            statuses = {c["id"]: c["status"] for c in claims_of(live, s)}
            assert statuses[other["id"]] == "voided"
            assert sorted(statuses.values()) == ["pending", "pending", "voided"]

            # The profile: payout details, checked by the API, shown after saving.
            page.get_by_role("link", name="Profile", exact=True).click()
            page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 01")
            page.get_by_role("button", name="Save the details").click()
            assert "This IBAN is not valid" in page.locator("#f-payout_iban-error").inner_text()
            page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
            page.get_by_label("Account holder").fill("Kumasi Trainers Ltd")
            page.get_by_role("button", name="Save the details").click()
            page.wait_for_url("**/console/profile?notice=profile_saved")
            assert "DE89370400440532013000" in page.locator("dl.facts").inner_text()
            assert_accessible(page)
            screenshot(page, "supplier-profile")
            watched.assert_clean()


def qr_video(text: str, path: Path, width: int = 640, height: int = 480) -> None:
    """A few frames of YUV4MPEG2 showing the QR code of ``text``: the Y plane from the
    code's modules, scaled up with a white quiet zone; U and V neutral (128)."""
    matrix = segno.make(text, error="m").matrix
    modules = len(matrix)
    scale = min(width, height) // (modules + 8)
    side = modules * scale
    left, top = (width - side) // 2, (height - side) // 2
    luma = bytearray([235]) * (width * height)
    for y, row in enumerate(matrix):
        line = bytes(16 if dark else 235 for dark in row for _ in range(scale))
        for dy in range(scale):
            start = (top + y * scale + dy) * width + left
            luma[start : start + side] = line
    chroma = bytes([128]) * (width // 2 * height // 2)
    frame = b"FRAME\n" + bytes(luma) + chroma + chroma
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * 5)


def test_the_camera_reads_the_groups_qr_code(settings: Settings, tmp_path: Path) -> None:
    with live_app(settings) as live:
        s = scheme(live)
        video = tmp_path / "qr.y4m"
        qr_video(f"{live.url}/console/redeem?code={s.voucher['code']}", video)
        fake_camera = [
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ]
        with (
            chromium(fake_camera) as browser,
            browsing(browser, base_url=live.url, permissions=["camera"], viewport=PHONE) as watched,
        ):
            page = watched.page
            sign_in(page, CLERK, "**/console/redeem")
            scan = page.get_by_role("button", name="Scan with camera")
            assert scan.is_visible()
            scan.click()
            page.wait_for_url("**/console/redeem/check")
            assert page.get_by_label("Voucher code").input_value() == s.voucher["code"]
            assert "Leaders 2026" in page.locator("dl.facts").inner_text()
            assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
            assert_accessible(page)
            watched.assert_clean()
