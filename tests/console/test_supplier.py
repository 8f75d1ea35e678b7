"""The suppliers' pages without a browser: what they show from the API, what they
send it, and what they refuse — a bad code or amount in words, a double submit that
makes one claim (and one evidence row), other suppliers' claims as not found, forms
without their CSRF token, viewers and non-owners."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories.console import console_client, console_sign_in, form_on, hidden_fields
from tests.factories.evidence import evidence_rows, pdf
from tests.factories.programmes import issue
from tests.factories.redemptions import (
    Cast,
    claim,
    claim_count,
    claim_programme,
    decide,
    get_claim,
    make_cast,
    mistyped,
    settle,
    today,
    unknown_code,
)
from tests.factories.sessions import add_human
from voucherledger.console.supplier import AmountError, csv_cell, parse_amount
from voucherledger.core.settings import Settings

IBAN = "DE89 3704 0044 0532 0130 00"


@dataclass
class Shop:
    """A supplier accredited in one programme, a voucher of a group to redeem, and the
    emails of the supplier's people (who sign in with the factories' password)."""

    client: TestClient
    cast: Cast
    programme: dict[str, Any]
    voucher: dict[str, Any]
    people: dict[str, str]

    def sign_in(self, role: str = "owner") -> None:
        """As the supplier's member of ``role``, or ``other``: the other supplier's owner."""
        self.client.cookies.clear()
        signed = console_sign_in(self.client, self.people[role])
        assert signed.status_code == 303, signed.text


@contextmanager
def shop(settings: Settings, **rules: Any) -> Iterator[Shop]:
    with console_client(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(
            client,
            cast,
            accredit_for=(cast.supplier, cast.other_supplier),
            name="Leaders 2026",
            rules=rules,
        )
        voucher = issue(client, cast.manager, programme["id"], cast.group.id, 50_000)
        people = {
            role: add_human(client, cast.supplier.id, role).email
            for role in ("owner", "operator", "viewer")
        }
        people["other"] = add_human(client, cast.other_supplier.id, "owner").email
        yield Shop(client, cast, programme, voucher, people)


def checked(s: Shop, code: str) -> httpx.Response:
    """The redeem page's check form posted with ``code``."""
    form = form_on(s.client, "/console/redeem", "/console/redeem/check")
    return form.post(s.client, voucher_code=code)


def claim_form(page: str) -> dict[str, str]:
    """The hidden fields of the claim form on a checked page."""
    match = re.search(r'action="/console/redeem/claim"[^>]*>(.*?)</form>', page, re.S)
    assert match, "no claim form on the page"
    return hidden_fields(match.group(1))


def post_claim(
    s: Shop, fields: dict[str, str], *, files: Sequence[tuple[str, bytes, str]] = (), **values: str
) -> httpx.Response:
    data = {
        "amount": "12.50",
        "service_category": "leadership",
        "description": "Board training, two days",
        **fields,
        **values,
    }
    response: httpx.Response = s.client.post(
        "/console/redeem/claim",
        data=data,
        files=[("evidence", f) for f in files] or None,
        follow_redirects=False,
    )
    return response


# --- amounts and cells -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("12,5", "EUR", 1250),
        ("1 200", "EUR", 120_000),
        ("0.01", "EUR", 1),
        ("0.1", "EUR", 10),
        ("7", "EUR", 700),
        ("1500", "XOF", 1500),
        ("1.234", "KWD", 1234),
        ("9007199254740.99", "EUR", 900_719_925_474_099),
        ("1,250.50", "EUR", 125_050),
        ("1.250,50", "EUR", 125_050),
        ("1,250,000", "XOF", 1_250_000),
        ("12 345.6", "EUR", 1_234_560),
        ("1,250", "XOF", 1250),
    ],
)
def test_a_typed_amount_is_read_exactly(typed: str, currency: str, minor: int) -> None:
    assert parse_amount(typed, currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency", "words"),
    [
        ("", "EUR", "Give the amount."),
        ("12.345", "EUR", "EUR has 2 decimals at most."),
        ("12.5", "XOF", "XOF has no decimals: give a whole number."),
        ("0", "EUR", "The amount must be more than zero."),
        ("0.00", "EUR", "The amount must be more than zero."),
        ("-5", "EUR", "Write the amount with digits and one decimal mark, such as 12.50."),
        ("1e3", "EUR", "Write the amount with digits and one decimal mark, such as 12.50."),
        ("1,23.50", "EUR", "Write the amount with digits and one decimal mark, such as 12.50."),
        ("1,234,56.7", "EUR", "Write the amount with digits and one decimal mark, such as 12.50."),
        ("1,234.567,8", "EUR", "Write the amount with digits and one decimal mark, such as 12.50."),
        ("1,234,567.891", "EUR", "EUR has 2 decimals at most."),
        ("€12", "EUR", "Write the amount with digits and one decimal mark, such as 12.50."),
        ("90071992547409.92", "EUR", "This amount is too large."),
        ("1" * 40, "EUR", "This amount is too large."),
    ],
)
def test_an_amount_the_currency_cannot_hold_is_refused(
    typed: str, currency: str, words: str
) -> None:
    with pytest.raises(AmountError) as refused:
        parse_amount(typed, currency)
    assert refused.value.message % refused.value.values == words


def test_a_text_cell_cannot_start_a_formula() -> None:
    assert [csv_cell(v) for v in ("=1+1", "+44 20", "-x", "@SUM(A1)", "\tx", "ok", None)] == [
        "'=1+1",
        "'+44 20",
        "'-x",
        "'@SUM(A1)",
        "'\tx",
        "ok",
        "",
    ]


# --- redeem ------------------------------------------------------------------------------


def test_the_check_shows_what_the_voucher_may_pay(settings: Settings) -> None:
    with shop(settings) as s:
        s.sign_in()
        code = s.voucher["code"]
        prefilled = s.client.get("/console/redeem", params={"code": code})
        assert f'value="{code}"' in prefilled.text
        response = checked(s, code.lower().replace("-", " "))
        assert response.status_code == 200, response.text
        page = response.text
        assert "Leaders 2026" in page
        assert "€500.00" in page
        assert "Leadership" in page
        assert "Fundraising" in page
        assert "Governance" in page
        fields = claim_form(page)
        assert fields["currency"] == "EUR"
        assert fields["idempotency_key"].startswith("form-")
        assert '<option value="leadership"' in page


def test_a_bad_code_is_explained_and_the_limiter_speaks_too(settings: Settings) -> None:
    with shop(settings) as s:
        s.sign_in()
        typo = checked(s, mistyped(s.voucher["code"]))
        assert typo.status_code == 422
        assert "This code has a typo: check each character." in typo.text
        assert "/console/redeem/claim" not in typo.text
        unknown = checked(s, unknown_code())
        assert unknown.status_code == 404
        assert "No voucher with this code can be claimed by you." in unknown.text
        assert "Not found" not in unknown.text  # the redeem page, not the not-found page
        for _ in range(10):
            last = checked(s, unknown_code())
        assert last.status_code == 429
        assert "Too many attempts. Wait a few minutes, then try again." in last.text


def test_a_code_of_a_programme_without_me_is_unknown(settings: Settings) -> None:
    with shop(settings) as s:
        elsewhere = claim_programme(s.client, s.cast)  # nobody accredited
        other = issue(s.client, s.cast.manager, elsewhere["id"], s.cast.group.id, 1_000)
        s.sign_in()
        response = checked(s, other["code"])
        assert response.status_code == 404
        assert "No voucher with this code can be claimed by you." in response.text


def test_a_claim_with_a_pdf_posted_twice_is_one_claim_and_one_file(settings: Settings) -> None:
    with shop(settings) as s:
        s.sign_in()
        fields = claim_form(checked(s, s.voucher["code"]).text)
        files = [("invoice.pdf", pdf(), "application/pdf")]
        first = post_claim(s, fields, files=files, delivered_on=str(today()))
        assert first.status_code == 303, first.text
        again = post_claim(s, fields, files=files, delivered_on=str(today()))
        assert again.status_code == 303, again.text
        assert again.headers["location"] == first.headers["location"]
        redemption_id = first.headers["location"].split("/")[-1].split("?")[0]
        assert first.headers["location"].endswith("?notice=claim_made")
        assert claim_count(s.client) == 1
        rows = evidence_rows(s.client)
        assert [row[2] for row in rows["files"]] == [redemption_id]
        made = get_claim(s.client, s.cast.supplier, redemption_id)
        assert (made["amount"], made["service_category"], made["status"]) == (
            1250,
            "leadership",
            "pending",
        )
        assert made["delivered_on"] == str(today())
        page = s.client.get(first.headers["location"])
        assert "Your claim is made." in page.text
        assert f'href="/console/evidence/{made["evidence_files"][0]["id"]}"' in page.text


def test_an_amount_with_too_many_decimals_is_refused_and_sends_nothing(
    settings: Settings,
) -> None:
    with shop(settings) as s:
        s.sign_in()
        fields = claim_form(checked(s, s.voucher["code"]).text)
        refused = post_claim(
            s, fields, files=[("invoice.pdf", pdf(), "application/pdf")], amount="12.345"
        )
        assert refused.status_code == 422
        assert 'id="f-amount-error">EUR has 2 decimals at most.' in refused.text
        assert 'value="12.345"' in refused.text  # what was typed stays
        assert "Board training, two days" in refused.text
        assert claim_count(s.client) == 0
        assert evidence_rows(s.client)["files"] == []


def test_a_file_that_is_not_a_document_is_refused_next_to_the_field(settings: Settings) -> None:
    with shop(settings) as s:
        s.sign_in()
        fields = claim_form(checked(s, s.voucher["code"]).text)
        refused = post_claim(
            s,
            fields,
            files=[
                ("invoice.pdf", pdf(), "application/pdf"),
                ("photo.pdf", b"GIF89a not a pdf", "application/pdf"),
            ],
        )
        assert refused.status_code == 415
        assert (
            'id="f-evidence-error">photo.pdf: Only PDF, JPEG and PNG files can be attached.'
            in refused.text
        )
        assert claim_count(s.client) == 0
        # The file that passed stays attached: ticked, with its name, not sent twice.
        kept = re.findall(r'name="evidence_id" value="(evd_[^"]+)"', refused.text)
        assert len(kept) == 1
        assert "invoice.pdf" in refused.text
        fields = claim_form(refused.text)
        made = post_claim(s, fields, evidence_id=kept[0])
        assert made.status_code == 303, made.text
        assert claim_count(s.client) == 1
        assert len(evidence_rows(s.client)["files"]) == 1


def test_a_claim_the_api_refuses_is_shown_on_the_form(settings: Settings) -> None:
    with shop(settings) as s:
        s.sign_in()
        fields = claim_form(checked(s, s.voucher["code"]).text)
        too_much = post_claim(s, fields, amount="600")
        assert too_much.status_code == 409
        assert "The amount is more than the voucher can pay." in too_much.text
        assert 'aria-invalid="true"' in too_much.text
        fields = claim_form(too_much.text)
        assert fields["idempotency_key"] != ""
        future = post_claim(s, fields, delivered_on="2999-01-01")
        assert future.status_code == 422
        assert 'id="f-delivered_on-error">Give the date the service was delivered' in future.text
        assert claim_count(s.client) == 0


def test_forms_without_their_csrf_token_are_refused(settings: Settings) -> None:
    with shop(settings) as s:
        s.sign_in()
        fields = claim_form(checked(s, s.voucher["code"]).text)
        fields.pop("csrf_token")
        refused = post_claim(s, fields, files=[("invoice.pdf", pdf(), "application/pdf")])
        assert refused.status_code == 403
        assert "This form is out of date." in refused.text
        no_check = s.client.post("/console/redeem/check", data={"voucher_code": s.voucher["code"]})
        assert no_check.status_code == 403
        assert claim_count(s.client) == 0
        assert evidence_rows(s.client)["files"] == []


def test_a_viewer_sees_no_forms_and_is_refused(settings: Settings) -> None:
    with shop(settings) as s:
        s.sign_in("owner")
        fields = form_on(s.client, "/console/redeem", "/console/redeem/check").fields
        s.sign_in("viewer")
        page = s.client.get("/console/redeem")
        assert page.status_code == 200
        assert "Your role lets you see claims, not make them." in page.text
        assert 'action="/console/redeem/check"' not in page.text
        viewer_fields = hidden_fields(page.text)  # the sign-out form's token
        refused = s.client.post(
            "/console/redeem/check",
            data={"csrf_token": viewer_fields["csrf_token"], "voucher_code": s.voucher["code"]},
        )
        assert refused.status_code == 403
        assert "Your role does not allow this." in refused.text
        assert fields["csrf_token"] != viewer_fields["csrf_token"]


# --- my claims -------------------------------------------------------------------------


def test_my_claims_are_listed_filtered_and_others_are_not_found(settings: Settings) -> None:
    with shop(settings) as s:
        code = s.voucher["code"]
        kept = claim(s.client, s.cast.supplier, code, 1000, description="Kept claim")
        dropped = claim(s.client, s.cast.supplier, code, 2000, description="Dropped claim")
        assert decide(s.client, s.cast.supplier, dropped["id"], "cancel").status_code == 200
        theirs = claim(s.client, s.cast.other_supplier, code, 3000, description="Their claim")
        s.sign_in()
        listed = s.client.get("/console/my-claims")
        assert listed.status_code == 200
        assert "Kept claim" in listed.text
        assert "Dropped claim" in listed.text
        assert "Their claim" not in listed.text
        assert listed.text.index("Dropped claim") < listed.text.index("Kept claim")  # newest first
        pending = s.client.get("/console/my-claims", params={"status": "pending"})
        assert "Kept claim" in pending.text
        assert "Dropped claim" not in pending.text
        assert "€10.00" in pending.text
        mine = s.client.get(f"/console/my-claims/{kept['id']}")
        assert mine.status_code == 200
        assert "Kept claim" in mine.text
        for missing in (theirs["id"], "red_nothing"):
            other = s.client.get(f"/console/my-claims/{missing}")
            assert other.status_code == 404
            assert "There is nothing here, or it is not yours to see." in other.text
        stolen = form_on(s.client, "/console/redeem", "/console/redeem/check").fields
        assert (
            s.client.post(f"/console/my-claims/{theirs['id']}/cancel", data=stolen).status_code
            == 404
        )
        assert get_claim(s.client, s.cast.other_supplier, theirs["id"])["status"] == "pending"


def test_cancel_a_pending_claim_once(settings: Settings) -> None:
    with shop(settings) as s:
        made = claim(s.client, s.cast.supplier, s.voucher["code"], 1000)
        s.sign_in("operator")
        form = form_on(
            s.client, f"/console/my-claims/{made['id']}", f"/console/my-claims/{made['id']}/cancel"
        )
        first = form.post(s.client)
        assert first.status_code == 303
        assert first.headers["location"].endswith("?notice=claim_cancelled")
        assert form.post(s.client).status_code == 303  # the reload replays the answer
        assert get_claim(s.client, s.cast.supplier, made["id"])["status"] == "voided"
        page = s.client.get(f"/console/my-claims/{made['id']}")
        assert "Cancelled or refused" in page.text
        assert f"/console/my-claims/{made['id']}/cancel" not in page.text
        # A form of the claim shown while it was pending, sent after: refused in words.
        late = form_on(s.client, "/console/redeem", "/console/redeem/check").fields
        refused = s.client.post(f"/console/my-claims/{made['id']}/cancel", data=late)
        assert refused.status_code == 409
        assert "This cannot be done in the claim's present state." in refused.text


def test_refund_part_of_a_captured_claim(settings: Settings) -> None:
    with shop(settings, requires_group_confirmation=False) as s:
        made = claim(s.client, s.cast.supplier, s.voucher["code"], 1000)
        assert made["status"] == "captured"
        s.sign_in()
        here = f"/console/my-claims/{made['id']}"
        form = form_on(s.client, here, f"{here}/refund")
        bad = form.post(s.client, amount="1.505", reason="overcharged")
        assert bad.status_code == 422
        assert "EUR has 2 decimals at most." in bad.text
        too_much = form.post(s.client, amount="10.01", reason="overcharged")
        assert too_much.status_code == 409
        assert "At most 10.00 EUR can be refunded." in too_much.text
        done = form.post(s.client, amount="2,50", reason="overcharged")
        assert done.status_code == 303, done.text
        assert form.post(s.client, amount="2,50", reason="overcharged").status_code == 303
        assert get_claim(s.client, s.cast.supplier, made["id"])["refunded_amount"] == 250
        page = s.client.get(done.headers["location"])
        assert "The refund is made" in page.text
        assert "€2.50" in page.text


# --- settlements and the statement ---------------------------------------------------


def test_settlements_and_the_statement(settings: Settings) -> None:
    with shop(settings, requires_group_confirmation=False) as s:
        code = s.voucher["code"]
        claim(s.client, s.cast.supplier, code, 1000, description='=HYPERLINK("x")')
        paid = settle(s.client, s.cast.funder, s.programme["id"], s.cast.supplier.id, "SEPA-0042")
        assert paid.status_code == 201, paid.text
        later = claim(s.client, s.cast.supplier, code, 250, description="After the payout")
        s.sign_in()
        page = s.client.get("/console/settlements")
        assert page.status_code == 200
        assert "SEPA-0042" in page.text
        assert "€10.00" in page.text
        assert "Paid" in page.text
        response = s.client.get("/console/statement.csv")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"].startswith("attachment; filename=")
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert [(r["record"], r["amount_minor"], r["amount_major"]) for r in rows] == [
            ("claim", "1000", "10.00"),
            ("settlement", "1000", "10.00"),
            ("claim", "250", "2.50"),
        ]
        first = rows[0]
        assert first["description"] == '\'=HYPERLINK("x")'
        assert (first["settlement_id"], first["payout_reference"]) == (
            paid.json()["id"],
            "SEPA-0042",
        )
        assert rows[2]["id"] == later["id"]
        assert rows[2]["settlement_id"] == ""
        assert {r["currency"] for r in rows} == {"EUR"}


def test_another_suppliers_statement_holds_none_of_mine(settings: Settings) -> None:
    with shop(settings) as s:
        claim(s.client, s.cast.supplier, s.voucher["code"], 1000)
        s.sign_in("other")
        rows = list(
            csv.reader(
                io.StringIO(s.client.get("/console/statement.csv").content.decode("utf-8-sig"))
            )
        )
        assert len(rows) == 1  # the header alone


# --- the profile -----------------------------------------------------------------------


def test_the_owner_edits_the_profile_and_a_bad_iban_is_named(settings: Settings) -> None:
    with shop(settings) as s:
        s.sign_in()
        form = form_on(s.client, "/console/profile", "/console/profile")
        bad = form.post(
            s.client,
            contact_email="desk@shop.example",
            payout_iban="DE89 3704 0044 0532 0130 01",
            payout_account_holder="Shop Ltd",
        )
        assert bad.status_code == 422
        assert 'id="f-payout_iban-error">This IBAN is not valid' in bad.text
        assert 'value="DE89 3704 0044 0532 0130 01"' in bad.text
        account = s.client.get(f"/v1/accounts/{s.cast.supplier.id}", headers=s.cast.admin)
        assert account.json()["supplier"]["payout_iban"] is None
        saved = form.post(
            s.client,
            contact_email="desk@shop.example",
            contact_phone="+44 20 7946 0000",
            payout_iban=IBAN,
            payout_bic="",
            payout_account_holder="Shop Ltd",
        )
        assert saved.status_code == 303, saved.text
        page = s.client.get(saved.headers["location"])
        assert "Your details are saved." in page.text
        assert "DE89370400440532013000" in page.text
        assert "desk@shop.example" in page.text
        profile = s.client.get(f"/v1/accounts/{s.cast.supplier.id}", headers=s.cast.admin)
        assert profile.json()["supplier"]["payout_account_holder"] == "Shop Ltd"


def test_only_an_owner_sees_the_profile_form(settings: Settings) -> None:
    with shop(settings) as s:
        s.sign_in("operator")
        page = s.client.get("/console/profile")
        assert page.status_code == 200
        assert 'action="/console/profile"' not in page.text
        assert "Only an owner of your account can change these details." in page.text
        token = hidden_fields(page.text)["csrf_token"]
        refused = s.client.post("/console/profile", data={"csrf_token": token, "payout_iban": IBAN})
        assert refused.status_code == 403
        account = s.client.get(f"/v1/accounts/{s.cast.supplier.id}", headers=s.cast.admin)
        assert account.json()["supplier"]["payout_iban"] is None


def test_the_claim_form_takes_a_few_large_files_and_no_more(settings: Settings) -> None:
    """The console's claim path has its own body limit (app.py): above the API's 1 MiB
    for a JSON body, a few evidence files at their largest and no more."""
    small = settings.model_copy(update={"evidence_max_bytes": 300_000})
    with shop(small) as s:
        s.sign_in()
        fields = claim_form(checked(s, s.voucher["code"]).text)
        files = [
            (f"sheet-{n}.pdf", pdf(f"sheet {n}") + b"0" * 290_000, "application/pdf")
            for n in range(5)
        ]
        assert sum(len(f[1]) for f in files) > settings.max_body_bytes
        made = post_claim(s, fields, files=files)
        assert made.status_code == 303, made.text
        assert len(evidence_rows(s.client)["files"]) == 5
        fields = claim_form(checked(s, s.voucher["code"]).text)
        heavy = post_claim(s, fields, files=files + files[:4])
        assert heavy.status_code == 413
        assert claim_count(s.client) == 1
        assert len(evidence_rows(s.client)["files"]) == 5
