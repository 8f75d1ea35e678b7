"""The programmes' pages, driven without a browser: the list and the dashboard show
the API's figures, a new programme's rules reach the API as typed (and bad ones are
refused on their fields with nothing made), a deposit in major units is made once,
and only those the API lets act are offered (and allowed) to."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers
from tests.factories.console import console_client, console_sign_in, form_on, hidden_fields
from tests.factories.programmes import BALANCE_PARTS, list_all
from tests.factories.sessions import add_human
from voucherledger.console.templating import environment
from voucherledger.core.settings import Settings

BASE = "/console/programmes"
NEW = "/console/programmes/new"
money = environment("en").filters["money"]


@dataclass
class Scheme:
    client: TestClient
    admin: dict[str, str]
    funder: Party
    manager: Party
    auditor: Party
    women: Party
    others: Party
    supplier: Party
    programme: dict[str, Any]
    emails: dict[str, str]

    def api(self, method: str, path: str, party: Party, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=party.headers, **kwargs)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def sign_in(self, who: str) -> None:
        assert console_sign_in(self.client, self.emails[who]).status_code == 303

    def programme_now(self, programme_id: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self.api(
            "GET", f"/v1/programmes/{programme_id or self.programme['id']}", self.funder
        )
        return found

    def programme_count(self) -> int:
        return len(list_all(self.client, self.funder.headers, "/v1/programmes"))

    @property
    def page(self) -> str:
        return f"{BASE}/{self.programme['id']}"


@pytest.fixture
def scheme(settings: Settings) -> Iterator[Scheme]:
    """A funder's programme (30% for women-led groups) with a manager and an auditor,
    money deposited, a voucher to a women-led group and one to another, and a claim;
    the funder's owner signed in to the console."""
    with console_client(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder", name="Diaspora Development Fund")
        manager = make_party(client, admin, "manager", name="Umbrella Network")
        auditor = make_party(client, admin, "auditor", name="Civic Audit")
        women = make_party(
            client, admin, "group", name="Somali Women's Circle", group={"women_led": True}
        )
        others = make_party(client, admin, "group", name="Kumasi Hometown Association")
        supplier = make_party(client, admin, "supplier", name="Skills Cooperative")
        emails = {}
        for who, party in (("funder", funder), ("manager", manager), ("auditor", auditor)):
            emails[who] = f"{who}@scheme.example"
            add_human(client, party.id, "owner", email=emails[who])
        emails["viewer"] = "viewer@scheme.example"
        add_human(client, funder.id, "viewer", email=emails["viewer"])
        emails["group"] = "group@scheme.example"
        add_human(client, women.id, "owner", email=emails["group"])
        programme = client.post(
            "/v1/programmes",
            headers=funder.headers,
            json={
                "name": "Capacity 2027",
                "currency": "EUR",
                "service_categories": ["leadership", "governance"],
                "rules": {"women_led_reserve_pct": 30},
                "manager_ids": [manager.id],
                "auditor_ids": [auditor.id],
            },
        ).json()
        found = Scheme(
            client, admin, funder, manager, auditor, women, others, supplier, programme, emails
        )
        pid = programme["id"]
        found.api(
            "POST",
            f"/v1/programmes/{pid}/deposits",
            funder,
            json={"amount": 1_000_000, "reference": "DEP-1"},
        )
        found.api(
            "POST",
            f"/v1/programmes/{pid}/accreditations",
            funder,
            json={"supplier_id": supplier.id, "service_categories": ["leadership"]},
        )
        voucher = found.api(
            "POST",
            f"/v1/programmes/{pid}/vouchers",
            funder,
            json={"group_id": women.id, "amount": 200_000},
        )
        found.api(
            "POST",
            f"/v1/programmes/{pid}/vouchers",
            manager,
            json={"group_id": others.id, "amount": 150_000},
        )
        found.api(
            "POST",
            "/v1/redemptions",
            supplier,
            json={
                "voucher_code": voucher["code"],
                "amount": 45_000,
                "service_category": "leadership",
                "description": "Board training",
            },
        )
        found.sign_in("funder")
        yield found


def main_of(html: str) -> str:
    found = re.search(r"<main.*</main>", html, re.S)
    assert found, html
    return found[0]


def row_of(html: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert found, f"no row {row_id}"
    return found[1]


def new_form(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Women's enterprise 2028",
        "currency": "EUR",
        "service_categories": ["leadership", "enterprise_development"],
        "women_led_reserve_pct": "30",
        "voucher_validity_days": "180",
        "requires_group_confirmation": "no",
        "hold_days": "7",
        "settlement_approval": "two_person",
    }
    values.update(overrides)
    return values


# --- the list ---------------------------------------------------------------------------


def test_the_list_shows_my_programmes_and_their_balances_from_the_api(scheme: Scheme) -> None:
    html = main_of(scheme.client.get(BASE).text)
    balances = scheme.programme_now()["balances"]
    assert f'href="{scheme.page}"' in html
    assert "Capacity 2027" in html
    assert money(balances["deposited"], "EUR") in html
    free = balances["unissued"] + balances["unissued_women_led_reserve"]
    assert money(free, "EUR") in html
    assert money(balances["outstanding"], "EUR") in html
    assert f'href="{NEW}"' in html

    scheme.sign_in("manager")
    html = main_of(scheme.client.get(BASE).text)
    assert f'href="{scheme.page}"' in html
    assert f'href="{NEW}"' not in html
    assert scheme.client.get(NEW).status_code == 404


def test_a_group_gets_the_not_found_page(scheme: Scheme) -> None:
    scheme.sign_in("group")
    assert scheme.client.get(BASE).status_code == 404
    assert scheme.client.get(scheme.page).status_code == 404


# --- a new programme ------------------------------------------------------------------------


def test_a_new_programme_reaches_the_api_with_every_rule_as_typed(scheme: Scheme) -> None:
    form = form_on(scheme.client, NEW, NEW)
    values = new_form(
        eligible_group_types=["womens_group", "hometown_association"],
        eligible_origin_countries=["GH", "SO"],
        max_voucher_amount="1,250.50",
        max_total_per_group="2 500",
        manager_ids=scheme.manager.id,
        auditor_ids=f" {scheme.auditor.id} ",
        ends_at="2028-12-31",
    )
    made = form.post(scheme.client, **values)
    assert made.status_code == 303, made.text
    location = made.headers["location"]
    assert location.startswith(f"{BASE}/prg_")
    assert location.endswith("?notice=programme_created")
    programme = scheme.programme_now(location.split("/")[-1].split("?")[0])
    assert programme["name"] == "Women's enterprise 2028"
    assert programme["service_categories"] == ["leadership", "enterprise_development"]
    assert programme["rules"] == {
        "eligible_group_types": ["womens_group", "hometown_association"],
        "eligible_origin_countries": ["GH", "SO"],
        "max_voucher_amount": 125_050,
        "max_total_per_group": 250_000,
        "women_led_reserve_pct": 30,
        "voucher_validity_days": 180,
        "requires_group_confirmation": False,
        "hold_days": 7,
        "settlement_approval": "two_person",
    }
    assert programme["manager_ids"] == [scheme.manager.id]
    assert programme["auditor_ids"] == [scheme.auditor.id]
    assert programme["ends_at"].startswith("2028-12-31T23:59:59")
    shown = scheme.client.get(location)
    assert "The programme is made." in shown.text


def test_an_end_date_is_taken_as_yyyy_mm_dd_only(scheme: Scheme) -> None:
    """The same parser as a voucher's expiry: other ISO spellings are refused."""
    before = scheme.programme_count()
    for typed in ("20281231", "2028-W52-7"):
        form = form_on(scheme.client, NEW, NEW)
        refused = form.post(scheme.client, **new_form(ends_at=typed))
        assert refused.status_code == 422, (typed, refused.text)
        html = main_of(refused.text)
        assert 'id="f-ends_at-error"' in html, typed
        assert "Give a date, or leave it empty for no end." in html
    assert scheme.programme_count() == before


def test_bad_rules_are_shown_on_their_fields_and_nothing_is_made(scheme: Scheme) -> None:
    before = scheme.programme_count()
    form = form_on(scheme.client, NEW, NEW)
    refused = form.post(
        scheme.client,
        **new_form(
            service_categories=[],
            women_led_reserve_pct="150",
            hold_days="0",
            voucher_validity_days="a year",
        ),
    )
    assert refused.status_code == 422, refused.text
    html = main_of(refused.text)
    for name in ("women_led_reserve_pct", "hold_days", "voucher_validity_days"):
        assert f'id="f-{name}-error"' in html, name
        assert re.search(rf'id="f-{name}"[^>]*aria-invalid="true"', html), name
    assert 'id="f-service_categories-error"' in html
    assert "Give a whole number from 0 to 100." in html
    assert "Give a whole number of days from 1 to 365." in html
    # What was typed is shown again.
    assert 'value="150"' in html
    assert 'value="a year"' in html
    assert 'value="two_person" checked' in html
    # The parties are checked once the body is sound: an auditor is not a manager.
    form = form_on(scheme.client, NEW, NEW)
    refused = form.post(scheme.client, **new_form(manager_ids=scheme.auditor.id))
    assert refused.status_code == 422, refused.text
    assert re.search(r'id="f-manager_ids"[^>]*aria-invalid="true"', refused.text)
    assert "Give the ids of fund managers" in refused.text
    assert scheme.programme_count() == before


def test_an_amount_the_console_cannot_read_is_refused_before_the_api(scheme: Scheme) -> None:
    before = scheme.programme_count()
    form = form_on(scheme.client, NEW, NEW)
    refused = form.post(scheme.client, **new_form(max_voucher_amount="12.345"))
    assert refused.status_code == 422
    html = main_of(refused.text)
    assert 'id="f-max_voucher_amount-error"' in html
    assert "EUR has 2 decimals at most." in html
    assert scheme.programme_count() == before


def test_only_a_funder_may_open_the_new_programme_form(scheme: Scheme) -> None:
    scheme.sign_in("auditor")
    assert scheme.client.get(NEW).status_code == 404
    scheme.sign_in("viewer")
    html = main_of(scheme.client.get(BASE).text)
    assert f'href="{NEW}"' not in html


# --- the dashboard ---------------------------------------------------------------------


def test_the_dashboard_shows_the_api_balances_in_figures_and_in_the_picture(
    scheme: Scheme,
) -> None:
    html = main_of(scheme.client.get(scheme.page).text)
    balances = scheme.programme_now()["balances"]
    assert balances["deposited"] == sum(balances[part] for part in BALANCE_PARTS)
    for key in ("deposited", *BALANCE_PARTS):
        assert money(balances[key], "EUR") in row_of(html, f"balance-{key}"), key
    assert balances["held"] == 45_000
    assert balances["outstanding"] == 305_000
    # The stacked bar: one legend entry per part, the parts of deposited money.
    chart = html[html.index('class="chart chart-stacked"') :]
    chart = chart[: chart.index("</figure>")]
    assert chart.count("<li>") == len(BALANCE_PARTS)
    for part in BALANCE_PARTS:
        assert money(balances[part], "EUR") in chart
    assert "Women-led reserve" in chart
    assert "Held by claims" in chart


def test_the_dashboard_sums_issuance_and_claims_by_month(scheme: Scheme) -> None:
    html = main_of(scheme.client.get(scheme.page).text)
    section = html[html.index('id="time-heading"') : html.index('id="women-heading"')]
    assert "chart-columns" in section
    body = section[section.index("<tbody>") : section.index("</tbody>")]
    assert body.count("<tr>") == 1  # everything happened this month
    assert money(350_000, "EUR") in body  # two vouchers
    assert money(45_000, "EUR") in body  # one claim
    assert re.search(r'data-label="Vouchers issued">2<', body)


def test_the_women_led_share_is_the_report_s(scheme: Scheme) -> None:
    report = scheme.api("GET", f"/v1/programmes/{scheme.programme['id']}/report", scheme.funder)
    share = report["women_led"]
    assert share["amount_issued"] == 200_000
    assert share["share_of_issuance"] == "0.5714"
    html = main_of(scheme.client.get(scheme.page).text)
    section = html[html.index('id="women-heading"') : html.index('id="rules-heading"')]
    assert "57.1%" in section
    assert "That is at least the 30% the programme sets apart for them." in section
    assert money(share["amount_issued"], "EUR") in section
    assert money(share["reserve_balance"], "EUR") in section
    assert money(share["issued_from_reserve"], "EUR") in section
    assert "chart-bars" in section


# --- deposit, close, sweep -----------------------------------------------------------


def test_a_deposit_in_major_units_is_made_once(scheme: Scheme) -> None:
    before = scheme.programme_now()["balances"]
    form = form_on(scheme.client, scheme.page, f"{scheme.page}/deposit")
    first = form.post(scheme.client, amount="1,250.50", reference="DEP-2")
    assert first.status_code == 303
    assert first.headers["location"] == f"{scheme.page}?notice=deposit_made"
    again = form.post(scheme.client, amount="1,250.50", reference="DEP-2")  # a double click
    assert again.status_code == 303
    after = scheme.programme_now()["balances"]
    assert after["deposited"] == before["deposited"] + 125_050
    # 30% of it to the reserve, rounded down, the rest to unissued.
    assert after["unissued_women_led_reserve"] == before["unissued_women_led_reserve"] + 37_515


def test_a_bad_deposit_is_shown_on_its_field_and_nothing_moves(scheme: Scheme) -> None:
    before = scheme.programme_now()["balances"]
    form = form_on(scheme.client, scheme.page, f"{scheme.page}/deposit")
    refused = form.post(scheme.client, amount="12.345", reference="")
    assert refused.status_code == 422
    html = main_of(refused.text)
    assert 'id="f-amount-error"' in html
    assert 'id="f-reference-error"' in html
    assert 'value="12.345"' in html
    assert scheme.programme_now()["balances"] == before


def test_a_manager_is_not_offered_a_deposit_and_the_api_refuses_one(scheme: Scheme) -> None:
    before = scheme.programme_now()["balances"]
    scheme.sign_in("manager")
    page = scheme.client.get(scheme.page)
    html = main_of(page.text)
    assert f'action="{scheme.page}/deposit"' not in html
    assert f'action="{scheme.page}/close"' not in html
    assert f'action="{scheme.page}/sweep"' in html
    assert "Deposits, closing and payments to suppliers are the funder's." in html
    fields = hidden_fields(html)
    refused = scheme.client.post(
        f"{scheme.page}/deposit",
        data={**fields, "amount": "100", "reference": "not mine"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    closing = scheme.client.post(
        f"{scheme.page}/close", data={**fields, "confirm": "yes"}, follow_redirects=False
    )
    assert closing.status_code == 403
    assert scheme.programme_now()["balances"] == before
    assert scheme.programme_now()["status"] == "open"


def test_auditors_and_viewers_read_only(scheme: Scheme) -> None:
    for who in ("auditor", "viewer"):
        scheme.sign_in(who)
        html = main_of(scheme.client.get(scheme.page).text)
        assert '<form method="post" action="/console/programmes' not in html, who
        assert money(scheme.programme_now()["balances"]["deposited"], "EUR") in html


def test_a_manager_may_sweep(scheme: Scheme) -> None:
    scheme.sign_in("manager")
    form = form_on(scheme.client, scheme.page, f"{scheme.page}/sweep")
    swept = form.post(scheme.client)
    assert swept.status_code == 303
    assert swept.headers["location"] == f"{scheme.page}?notice=programme_swept"
    assert "The sweep is done" in scheme.client.get(swept.headers["location"]).text


def test_closing_needs_the_box_ticked_then_returns_the_budget(scheme: Scheme) -> None:
    before = scheme.programme_now()["balances"]
    form = form_on(scheme.client, scheme.page, f"{scheme.page}/close")
    unticked = form.post(scheme.client)
    assert unticked.status_code == 422
    assert 'id="f-confirm-error"' in unticked.text
    assert scheme.programme_now()["status"] == "open"
    closed = form_on(scheme.client, scheme.page, f"{scheme.page}/close").post(
        scheme.client, confirm="yes"
    )
    assert closed.status_code == 303
    after = scheme.programme_now()
    assert after["status"] == "closed"
    returned = before["unissued"] + before["unissued_women_led_reserve"]
    assert after["balances"]["returned_to_funder"] == returned
    html = main_of(scheme.client.get(scheme.page).text)
    assert f'action="{scheme.page}/deposit"' not in html
    assert money(returned, "EUR") in row_of(html, "balance-returned_to_funder")


# Found in review: inputs that gave a 500, an id that retargeted an API call, and one
# idempotency key shared by the forms of a page.


@pytest.mark.parametrize("typed", ["²", "٣", "1e3", "-1"])
def test_a_rule_in_other_digits_is_refused_on_its_field(scheme: Scheme, typed: str) -> None:
    scheme.sign_in("funder")
    before = scheme.programme_count()
    response = form_on(scheme.client, NEW, NEW).post(
        scheme.client,
        name="Odd digits",
        currency="EUR",
        service_categories="leadership",
        women_led_reserve_pct=typed,
    )
    assert response.status_code == 422
    assert 'id="f-women_led_reserve_pct-error"' in response.text
    assert scheme.programme_count() == before


@pytest.mark.parametrize(
    "query",
    [
        "/console/journal?from=0001-01-01T00:00%2B01:00",
        "/console/journal?to=9999-12-31T23:59-01:00",
        "/console/trial-balance?as_of=9999-12-31T23:59:59.999999-05:00",
        "/console/balances?account=programme:x:unissued&as_of=0001-01-01T00:00%2B05:00",
        "/console/exports/download?format=csv&from=0001-01-01T00:00%2B01:00",
    ],
)
def test_an_instant_past_the_calendar_is_refused_not_a_crash(scheme: Scheme, query: str) -> None:
    scheme.sign_in("funder")
    response = scheme.client.get(query)
    assert 400 <= response.status_code < 500, response.status_code


@pytest.mark.parametrize("odd", ["%3F", "x%2Fy", "%23", "%2E%2E"])
def test_an_id_that_is_no_id_finds_nothing(scheme: Scheme, odd: str) -> None:
    scheme.sign_in("funder")
    for address in (f"{BASE}/{odd}", f"{BASE}/{odd}/vouchers", f"/console/payouts/{odd}"):
        response = scheme.client.get(address)
        assert response.status_code == 404, (address, response.status_code)


def test_every_form_of_a_page_has_its_own_idempotency_key(scheme: Scheme) -> None:
    scheme.sign_in("funder")
    html = scheme.client.get(scheme.page).text
    keys = re.findall(r'name="idempotency_key" value="([^"]+)"', html)
    assert len(keys) >= 3  # deposit, sweep, close
    assert len(set(keys)) == len(keys)


def test_the_issued_count_in_the_address_must_be_a_count(scheme: Scheme) -> None:
    scheme.sign_in("funder")
    page = f"{scheme.page}/vouchers"
    spoofed = scheme.client.get(page, params={"issued": "Call +1-555 now; 3"}).text
    assert "Call +1-555" not in spoofed
    assert (
        "3 vouchers were issued in one batch."
        in scheme.client.get(page, params={"issued": "3"}).text
    )
