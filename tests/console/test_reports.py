"""A programme's suppliers and its report in the console, without a browser: the
figures shown are the API's, the CSV is the API's, accrediting and suspending reach
the API (a double submit accredits once), and auditors read but are refused."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import Party, make_party
from tests.factories.console import console_client, console_sign_in, form_on
from tests.factories.programmes import issue
from tests.factories.redemptions import (
    Cast,
    claim,
    claim_programme,
    decide,
    feedback,
    make_cast,
)
from tests.factories.sessions import add_human
from voucherledger.console.reports import dimensions
from voucherledger.core.settings import Settings


@dataclass
class Scheme:
    client: TestClient
    cast: Cast
    programme: dict[str, Any]
    newcomer: Party  # a supplier not yet accredited
    people: dict[str, str]

    @property
    def pid(self) -> str:
        return str(self.programme["id"])

    def sign_in(self, who: str) -> None:
        self.client.cookies.clear()
        signed = console_sign_in(self.client, self.people[who])
        assert signed.status_code == 303, signed.text

    def api(self, path: str, party: Party | None = None, **params: Any) -> Any:
        response = self.client.get(path, headers=(party or self.cast.funder).headers, params=params)
        assert response.status_code == 200, response.text
        return response.json() if "json" in response.headers["content-type"] else response.text


@pytest.fixture
def scheme(settings: Settings) -> Iterator[Scheme]:
    """A programme with one accredited supplier, two groups' vouchers, a confirmed and
    rated claim and a pending one; people of the funder, manager and auditor."""
    with console_client(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(
            client, cast, accredit_for=(cast.supplier,), name="Leaders 2026"
        )
        women = make_party(
            client, cast.admin, "group", group={"women_led": True, "origin_country": "SN"}
        )
        voucher = issue(client, cast.manager, programme["id"], cast.group.id, 50_000)
        issue(client, cast.manager, programme["id"], women.id, 30_000)
        made = claim(client, cast.supplier, voucher["code"], 12_500, "leadership")
        assert decide(client, cast.group, made["id"], "confirm").status_code == 200
        assert feedback(client, cast.group, made["id"], 5).status_code == 201
        claim(client, cast.supplier, voucher["code"], 4_000, "governance")
        newcomer = make_party(
            client,
            cast.admin,
            "supplier",
            name="Open Door Digital",
            supplier={"service_categories": ["leadership", "marketing"]},
        )
        people = {
            "funder": add_human(client, cast.funder.id, "owner").email,
            "funder_viewer": add_human(client, cast.funder.id, "viewer").email,
            "manager": add_human(client, cast.manager.id, "owner").email,
            "auditor": add_human(client, cast.auditor.id, "owner").email,
            "other_funder": add_human(client, cast.other_funder.id, "owner").email,
            "group": add_human(client, cast.group.id, "owner").email,
        }
        yield Scheme(client, cast, programme, newcomer, people)


def suppliers_url(s: Scheme) -> str:
    return f"/console/programmes/{s.pid}/suppliers"


def accreditation_of(s: Scheme, supplier_id: str) -> dict[str, Any] | None:
    listed = s.api(f"/v1/programmes/{s.pid}/suppliers")
    return next((x for x in listed if x["supplier_id"] == supplier_id), None)


# --- the suppliers ------------------------------------------------------------------


def test_the_suppliers_page_shows_the_apis_listing(scheme: Scheme) -> None:
    scheme.sign_in("funder")
    page = scheme.client.get(suppliers_url(scheme))
    assert page.status_code == 200, page.text
    listed = accreditation_of(scheme, scheme.cast.supplier.id)
    assert listed is not None
    assert listed["claim_count"] == 1  # the confirmed claim (the pending one not yet)
    assert listed["average_rating"] == 5.0
    row = re.search(
        rf"<tr>\s*<td[^>]*><a href=\"{suppliers_url(scheme)}/{listed['supplier_id']}\">.*?</tr>",
        page.text,
        re.S,
    )
    assert row, page.text
    assert "Leadership, Fundraising, Governance" in row[0]
    assert "Accredited" in row[0]
    assert f'<td data-label="Accepted claims" class="num">{listed["claim_count"]}</td>' in row[0]
    assert "5.00 of 5" in row[0]
    # The directory offers the supplier not yet accredited, the form only the
    # programme's categories.
    assert (
        f'<option value="{scheme.newcomer.id}">Open Door Digital (Leadership, Marketing)'
        in page.text
    )
    assert 'value="marketing"' not in page.text
    assert 'value="governance"' in page.text


def test_accrediting_a_supplier_reaches_the_api_once(scheme: Scheme) -> None:
    scheme.sign_in("manager")
    form = form_on(scheme.client, suppliers_url(scheme), suppliers_url(scheme))
    body = {"supplier_id": scheme.newcomer.id, "service_categories": ["leadership"]}
    made = form.post(scheme.client, **body)
    assert made.status_code == 303, made.text
    assert made.headers["location"] == f"{suppliers_url(scheme)}?notice=supplier_accredited"
    again = form.post(scheme.client, **body)  # the same form sent twice
    assert again.headers["location"] == made.headers["location"]
    accredited = accreditation_of(scheme, scheme.newcomer.id)
    assert accredited is not None
    assert accredited["service_categories"] == ["leadership"]
    assert accredited["status"] == "active"
    shown = scheme.client.get(made.headers["location"])
    assert "The supplier is accredited for the categories ticked." in shown.text


def test_a_category_the_supplier_does_not_offer_is_refused_and_nothing_changes(
    scheme: Scheme,
) -> None:
    scheme.sign_in("funder")
    form = form_on(scheme.client, suppliers_url(scheme), suppliers_url(scheme))
    refused = form.post(
        scheme.client, supplier_id=scheme.newcomer.id, service_categories=["governance"]
    )
    assert refused.status_code == 422, refused.text
    assert "The supplier does not offer governance." in refused.text
    assert f'<option value="{scheme.newcomer.id}" selected>' in refused.text
    assert accreditation_of(scheme, scheme.newcomer.id) is None
    # No category at all: the field is named.
    none = form_on(scheme.client, suppliers_url(scheme), suppliers_url(scheme)).post(
        scheme.client, supplier_id=scheme.newcomer.id
    )
    assert none.status_code == 422, none.text
    assert 'id="f-service_categories-error"' in none.text


def test_suspending_takes_two_steps_and_the_supplier_shows_suspended(scheme: Scheme) -> None:
    scheme.sign_in("funder")
    sid = scheme.cast.supplier.id
    confirm = f"{suppliers_url(scheme)}/{sid}/suspend"
    assert f'href="{confirm}"' in scheme.client.get(suppliers_url(scheme)).text
    first = scheme.client.get(confirm)
    assert first.status_code == 200
    assert "Suspend this supplier now" in first.text
    # The first step changes nothing.
    assert accreditation_of(scheme, sid)["status"] == "active"  # type: ignore[index]
    done = form_on(scheme.client, confirm, confirm).post(scheme.client)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{suppliers_url(scheme)}?notice=supplier_suspended"
    assert accreditation_of(scheme, sid)["status"] == "suspended"  # type: ignore[index]
    shown = scheme.client.get(done.headers["location"])
    assert "The supplier is suspended: its new claims are refused." in shown.text
    assert "Suspended" in shown.text
    assert f'href="{confirm}"' not in shown.text


def test_auditors_read_the_suppliers_but_are_refused_suspending(scheme: Scheme) -> None:
    # A form made for the funder, posted by the auditor with the auditor's token.
    scheme.sign_in("auditor")
    page = scheme.client.get(suppliers_url(scheme))
    assert page.status_code == 200, page.text
    assert "Accredit a supplier" not in page.text
    assert "/suspend" not in page.text
    sid = scheme.cast.supplier.id
    confirm = f"{suppliers_url(scheme)}/{sid}/suspend"
    step = scheme.client.get(confirm)
    assert "Suspend this supplier now" not in step.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    refused = scheme.client.post(confirm, data={"csrf_token": csrf[1]}, follow_redirects=False)
    assert refused.status_code == 403, refused.text
    assert accreditation_of(scheme, sid)["status"] == "active"  # type: ignore[index]
    accredit = scheme.client.post(
        suppliers_url(scheme),
        data={
            "csrf_token": csrf[1],
            "supplier_id": scheme.newcomer.id,
            "service_categories": "leadership",
        },
        follow_redirects=False,
    )
    assert accredit.status_code == 403, accredit.text
    assert accreditation_of(scheme, scheme.newcomer.id) is None


def test_a_viewer_of_the_funder_gets_no_forms_and_the_api_refuses_them(scheme: Scheme) -> None:
    scheme.sign_in("funder_viewer")
    page = scheme.client.get(suppliers_url(scheme))
    assert "Accredit a supplier" not in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    refused = scheme.client.post(
        f"{suppliers_url(scheme)}/{scheme.cast.supplier.id}/suspend",
        data={"csrf_token": csrf[1]},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert accreditation_of(scheme, scheme.cast.supplier.id)["status"] == "active"  # type: ignore[index]


def test_a_post_without_the_csrf_token_is_refused(scheme: Scheme) -> None:
    scheme.sign_in("funder")
    refused = scheme.client.post(
        f"{suppliers_url(scheme)}/{scheme.cast.supplier.id}/suspend", follow_redirects=False
    )
    assert refused.status_code == 403
    assert accreditation_of(scheme, scheme.cast.supplier.id)["status"] == "active"  # type: ignore[index]


@pytest.mark.parametrize("who", ["other_funder", "group"])
def test_other_parties_get_the_not_found_page(scheme: Scheme, who: str) -> None:
    scheme.sign_in(who)
    for path in (
        suppliers_url(scheme),
        f"{suppliers_url(scheme)}/{scheme.cast.supplier.id}",
        f"/console/programmes/{scheme.pid}/report",
        f"/console/programmes/{scheme.pid}/report.csv",
    ):
        assert scheme.client.get(path).status_code == 404, path


def test_a_suppliers_page_shows_its_claims_and_its_report_line(scheme: Scheme) -> None:
    scheme.sign_in("auditor")
    sid = scheme.cast.supplier.id
    page = scheme.client.get(f"{suppliers_url(scheme)}/{sid}")
    assert page.status_code == 200, page.text
    claims = scheme.api("/v1/redemptions", programme_id=scheme.pid, supplier_id=sid)["data"]
    assert len(claims) == 2
    assert page.text.count('<td data-label="What was delivered">') == 2
    assert "€125.00" in page.text
    assert "€40.00" in page.text
    report = scheme.api(f"/v1/programmes/{scheme.pid}/report")
    (line,) = [x for x in report["breakdowns"]["supplier"] if x["key"] == sid]
    assert line["average_rating"] == "5.00"
    assert line["outcomes_process"] == 1
    assert "5.00 of 5" in page.text
    assert "<dt>Process outcomes</dt><dd>1</dd>" in page.text
    # A supplier not accredited here is not found.
    missing = scheme.client.get(f"{suppliers_url(scheme)}/{scheme.newcomer.id}")
    assert missing.status_code == 404


# --- the report ---------------------------------------------------------------------


def test_the_report_shows_the_apis_figures(scheme: Scheme) -> None:
    scheme.sign_in("funder")
    page = scheme.client.get(f"/console/programmes/{scheme.pid}/report")
    assert page.status_code == 200, page.text
    report = scheme.api(f"/v1/programmes/{scheme.pid}/report")
    totals = report["totals"]
    assert totals["amount_issued"] == 80_000
    assert totals["captured"] == 12_500
    assert "<dt>Amount issued</dt><dd>€800.00</dd>" in page.text
    assert "<dt>Accepted</dt><dd>€125.00</dd>" in page.text
    assert "<dt>Claimed</dt><dd>€165.00</dd>" in page.text
    assert f"<dt>Vouchers issued</dt><dd>{totals['vouchers_issued']}</dd>" in page.text
    # Every line of every dimension is a row of its table, named in words, with the
    # API's figures; and a chart per dimension.
    for dim in dimensions(report, "en"):
        section = re.search(
            rf'<section aria-labelledby="dim-{dim.key}".*?</section>', page.text, re.S
        )
        assert section, dim.key
        assert 'class="chart chart-bars"' in section[0]
        for row in dim.rows:
            found = re.search(
                rf"<tr>\s*<th scope=\"row\">{re.escape(_html(row.name))}</th>(.*?)</tr>",
                section[0],
                re.S,
            )
            assert found, (dim.key, row.name)
            cells = re.findall(r'<td data-label="([^"]+)" class="num">([^<]*)</td>', found[1])
            shown = dict(cells)
            assert shown["Claims"] == str(row.line["claims"])
            assert shown["Accepted"] == _eur(row.line["captured"])
            if dim.by_group:
                assert shown["Amount issued"] == _eur(row.line["amount_issued"])
    assert "Women-led groups" in page.text
    assert "Senegal" in page.text
    assert "Ghana" in page.text
    assert "Hometown association" in page.text
    assert "Governance" in page.text


def test_the_report_names_slices_in_french(scheme: Scheme) -> None:
    scheme.sign_in("funder")
    page = scheme.client.get(
        f"/console/programmes/{scheme.pid}/report", headers={"Accept-Language": "fr"}
    )
    assert page.status_code == 200
    assert "Sénégal" in page.text
    assert "125,00\u00a0€" in page.text


def test_the_csv_is_the_apis(scheme: Scheme) -> None:
    scheme.sign_in("auditor")
    got = scheme.client.get(f"/console/programmes/{scheme.pid}/report.csv")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == (f'attachment; filename="report-{scheme.pid}.csv"')
    api = scheme.client.get(
        f"/v1/programmes/{scheme.pid}/report",
        headers=scheme.cast.auditor.headers,
        params={"format": "csv"},
    )
    assert got.content == api.content
    rows = list(csv.DictReader(io.StringIO(got.text)))
    report = scheme.api(f"/v1/programmes/{scheme.pid}/report")
    expected = 1 + sum(len(lines) for lines in report["breakdowns"].values())
    assert len(rows) == expected
    (total,) = [r for r in rows if r["dimension"] == "total"]
    assert int(total["captured"]) == report["totals"]["captured"]
    (leader,) = [
        r for r in rows if r["dimension"] == "supplier" and r["key"] == scheme.cast.supplier.id
    ]
    assert leader["average_rating"] == "5.00"


def _eur(minor: int) -> str:
    return f"€{minor // 100:,}.{minor % 100:02d}"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;")
