"""A programme's vouchers in the console, without a browser: the upload's preview
lists exactly the bad lines with their reasons and writes nothing; a clean file is
issued all at once, once; the confirm form's rows are checked again by the API;
issuing one shows the group's eligibility first; revoking needs a reason; the list
filters and searches what the API lists."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers
from tests.factories.console import console_client, console_sign_in, form_on, hidden_fields
from tests.factories.programmes import list_all, snapshot
from tests.factories.sessions import add_human
from voucherledger.core.settings import Settings

EMAIL = "ama@funder.example"
LATER = (datetime.now(UTC).date() + timedelta(days=60)).isoformat()  # an expiry to give


@dataclass
class Scheme:
    client: TestClient
    admin: dict[str, str]
    funder: Party
    auditor: Party
    groups: dict[str, Party]
    programme: dict[str, Any]

    @property
    def base(self) -> str:
        return f"/console/programmes/{self.programme['id']}/vouchers"

    def vouchers(self) -> list[dict[str, Any]]:
        return list_all(
            self.client, self.funder.headers, "/v1/vouchers", programme_id=self.programme["id"]
        )

    def upload(self, content: bytes) -> httpx.Response:
        form = form_on(self.client, f"{self.base}/upload", f"{self.base}/upload")
        response: httpx.Response = self.client.post(
            form.action,
            data=form.fields,
            files={"file": ("vouchers.csv", content, "text/csv")},
            follow_redirects=False,
        )
        return response


@pytest.fixture
def scheme(settings: Settings) -> Iterator[Scheme]:
    with console_client(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder", name="Diaspora Fund")
        auditor = make_party(client, admin, "auditor")
        groups = {
            "kumasi": make_party(client, admin, "group", name="Kumasi Hometown Association"),
            "lagos": make_party(
                client,
                admin,
                "group",
                name="Lagos Women's Circle",
                group={"group_type": "womens_group", "origin_country": "NG", "women_led": True},
            ),
            "party": make_party(
                client, admin, "group", name="Unity Party", group={"group_type": "political_group"}
            ),
            "twin1": make_party(client, admin, "group", name="Twin Town"),
            "twin2": make_party(client, admin, "group", name="Twin Town"),
        }
        programme = client.post(
            "/v1/programmes",
            headers=funder.headers,
            json={
                "name": "Capacity 2027",
                "currency": "EUR",
                "service_categories": ["leadership", "governance"],
                "rules": {
                    "eligible_group_types": ["hometown_association", "womens_group"],
                    "max_voucher_amount": 50_000,
                    "max_total_per_group": 80_000,
                },
                "auditor_ids": [auditor.id],
            },
        ).json()
        deposited = client.post(
            f"/v1/programmes/{programme['id']}/deposits",
            headers=funder.headers,
            json={"amount": 10_000_000, "reference": "DEP-1"},
        )
        assert deposited.status_code == 201, deposited.text
        add_human(client, funder.id, "owner", email=EMAIL)
        assert console_sign_in(client, EMAIL).status_code == 303
        yield Scheme(client, admin, funder, auditor, groups, programme)


def bad_lines(page: str) -> list[tuple[int, str]]:
    """The preview's refused lines as (line, reason)."""
    table = re.search(r'<table class="stacked" id="bad-table">(.*?)</table>', page, re.S)
    if table is None:
        return []
    return [
        (int(line), html.unescape(reason))
        for line, reason in re.findall(
            r'<th scope="row"[^>]*>(\d+)</th><td[^>]*>([^<]*)</td>', table.group(1)
        )
    ]


# --- the upload ---------------------------------------------------------------------


def test_the_preview_lists_exactly_the_bad_lines_and_writes_nothing(scheme: Scheme) -> None:
    g = scheme.groups
    content = (
        "\ufeffgroup,amount,categories,expires_at\r\n"
        f"{g['kumasi'].id},100.00,leadership,\r\n"  # 2
        f"Lagos Women's Circle,250,leadership;governance,{LATER}\r\n"  # 3
        "Nobody Here,10,,\r\n"  # 4: unknown group
        "Kumasi Hometown Association,12.345,,\r\n"  # 5: three decimals
        "Kumasi Hometown Association,10,,31/12/2026\r\n"  # 6: not a date
        "Unity Party,10,,\r\n"  # 7: not eligible (the API)
        "Kumasi Hometown Association,600,,\r\n"  # 8: over the most for one voucher (the API)
        "Twin Town,10,,\r\n"  # 9: two groups have the name
        "\r\n"
        "Kumasi Hometown Association,10,cooking,\r\n"  # 11: not a category
    ).encode()
    before = snapshot(scheme.client)
    response = scheme.upload(content)
    assert response.status_code == 422, response.text
    assert [line for line, _ in bad_lines(response.text)] == [4, 5, 6, 7, 8, 9, 11]
    reasons = dict(bad_lines(response.text))
    assert reasons[4] == "No group has this id or name."
    assert reasons[7].startswith("The group is not eligible")
    assert reasons[8].startswith("Over a limit of the programme")
    assert "Nothing was issued" in response.text or "nothing was issued" in response.text
    assert 'action="' + scheme.base + '/batch"' not in response.text  # no confirm form
    assert snapshot(scheme.client) == before
    assert scheme.vouchers() == []


def test_a_clean_file_is_issued_all_at_once_and_once(scheme: Scheme) -> None:
    g = scheme.groups
    lines = ["group;amount;categories;expires_at"]  # a semicolon-separated export
    lines += [f"Kumasi Hometown Association;{n}.50;governance;" for n in range(1, 4)]
    lines += [f"{g['lagos'].id};20;;{LATER}"]
    response = scheme.upload(("\n".join(lines) + "\n").encode())
    assert response.status_code == 200, response.text
    assert bad_lines(response.text) == []
    assert "Issue all 4 vouchers" in response.text
    match = re.search(
        r'<form[^>]*action="' + re.escape(scheme.base + "/batch") + r'"[^>]*>(.*?)</form>',
        response.text,
        re.S,
    )
    assert match
    fields = {k: html.unescape(v) for k, v in hidden_fields(match.group(1)).items()}
    assert scheme.vouchers() == []  # the preview wrote nothing
    issued = scheme.client.post(scheme.base + "/batch", data=fields, follow_redirects=False)
    assert issued.status_code == 303, issued.text
    assert issued.headers["location"].endswith("notice=vouchers_issued")
    made = scheme.vouchers()
    assert sorted((v["group_id"], v["amount"], v["service_categories"]) for v in made) == sorted(
        [(g["kumasi"].id, n * 100 + 50, ["governance"]) for n in range(1, 4)]
        + [(g["lagos"].id, 2000, ["leadership", "governance"])]
    )
    assert {v["expires_at"][:10] for v in made if v["group_id"] == g["lagos"].id} == {LATER}
    # The same form again (a double click, a reload): the first answer, nothing twice.
    again = scheme.client.post(scheme.base + "/batch", data=fields, follow_redirects=False)
    assert again.status_code == 303
    assert len(scheme.vouchers()) == 4
    listed = scheme.client.get(issued.headers["location"])
    assert "The vouchers are issued." in listed.text
    for voucher in made:
        assert voucher["code"] in listed.text


def test_the_confirmed_rows_are_checked_again(scheme: Scheme) -> None:
    response = scheme.upload(b"group,amount\nKumasi Hometown Association,100\n")
    assert response.status_code == 200, response.text
    match = re.search(r'action="[^"]*/batch"[^>]*>(.*?)</form>', response.text, re.S)
    assert match
    fields = {k: html.unescape(v) for k, v in hidden_fields(match.group(1)).items()}
    # Rows changed in the browser: over the most one voucher may hold.
    fields["rows"] = fields["rows"].replace(",10000,", ",9999900,")
    before = snapshot(scheme.client)
    refused = scheme.client.post(scheme.base + "/batch", data=fields, follow_redirects=False)
    assert refused.status_code == 422, refused.text
    assert [line for line, _ in bad_lines(refused.text)] == [2]
    garbled = scheme.client.post(
        scheme.base + "/batch", data={**fields, "rows": "[[2, 1]]"}, follow_redirects=False
    )
    assert garbled.status_code == 400
    assert "The preview is out of date" in garbled.text
    assert snapshot(scheme.client) == before


def test_a_file_that_cannot_be_read_issues_nothing(scheme: Scheme) -> None:
    before = snapshot(scheme.client)
    for content, words in [
        (b"", "The file is empty."),
        (b"name,value\nx,1\n", "The first line must name the columns"),
        (b"group,amount\n", "The file has no vouchers"),
        (b"group,amount\n" + b"x,1\n" * 160_000, "The file is larger than"),
    ]:
        response = scheme.upload(content)
        assert response.status_code == 422
        assert words in html.unescape(response.text)
    assert snapshot(scheme.client) == before


def test_the_template_csv_is_one_the_upload_reads(scheme: Scheme) -> None:
    template = scheme.client.get(scheme.base + "/template.csv")
    assert template.status_code == 200
    assert template.headers["content-type"].startswith("text/csv")
    assert template.text.splitlines()[0] == "group,amount,categories,expires_at"


# --- one voucher ----------------------------------------------------------------------


def test_issuing_one_shows_the_eligibility_first(scheme: Scheme) -> None:
    g = scheme.groups
    new = scheme.base + "/new"
    form = form_on(scheme.client, new, new)
    checked = form.post(scheme.client, group_id=g["party"].id, amount="10", action="check")
    assert checked.status_code == 200
    assert "not eligible" in checked.text
    assert "The group is not eligible" in checked.text
    checked = form.post(scheme.client, group_id=g["kumasi"].id, amount="600", action="check")
    assert "Over a limit of the programme" in checked.text
    assert scheme.vouchers() == []
    checked = form.post(scheme.client, group_id=g["kumasi"].id, amount="250", action="check")
    assert "this voucher can be issued now" in checked.text
    assert scheme.vouchers() == []
    bad = form.post(scheme.client, group_id=g["kumasi"].id, amount="2.505", action="issue")
    assert bad.status_code == 422
    assert scheme.vouchers() == []
    issued = form.post(
        scheme.client,
        group_id=g["kumasi"].id,
        amount="250",
        service_categories="leadership",
        expires_on=LATER,
        action="issue",
    )
    assert issued.status_code == 303, issued.text
    [made] = scheme.vouchers()
    assert (made["amount"], made["service_categories"]) == (25_000, ["leadership"])
    assert issued.headers["location"].startswith(f"{scheme.base}/{made['id']}")
    # The same form again: one voucher.
    form.post(scheme.client, group_id=g["kumasi"].id, amount="250", action="issue")
    assert len(scheme.vouchers()) == 1
    # What is issued already counts against the cap, shown before the next one.
    shown = form_on(scheme.client, f"{new}?group={g['kumasi'].id}", new)
    page = scheme.client.get(f"{new}?group={g['kumasi'].id}").text
    assert "€250.00 of at most €800.00" in page
    over = shown.post(scheme.client, group_id=g["kumasi"].id, amount="560", action="check")
    assert "Over a limit of the programme" in over.text


def test_revoking_needs_a_reason(scheme: Scheme) -> None:
    made = scheme.client.post(
        f"/v1/programmes/{scheme.programme['id']}/vouchers",
        headers=scheme.funder.headers,
        json={"group_id": scheme.groups["kumasi"].id, "amount": 1_000},
    ).json()
    page = f"{scheme.base}/{made['id']}"
    action = f"{page}/revoke"
    form = form_on(scheme.client, page, action)
    empty = form.post(scheme.client, reason="  ")
    assert empty.status_code == 422
    assert "Give the reason" in empty.text
    assert scheme.vouchers()[0]["status"] == "active"
    done = form.post(scheme.client, reason="Issued to the wrong group")
    assert done.status_code == 303
    assert done.headers["location"].endswith("notice=voucher_revoked")
    assert scheme.vouchers()[0]["status"] == "revoked"
    shown = scheme.client.get(done.headers["location"]).text
    assert "Revoke the voucher" not in shown
    # Another programme's voucher under this programme's address: not found.
    other = scheme.client.post(
        "/v1/programmes",
        headers=scheme.funder.headers,
        json={"name": "Other", "currency": "EUR", "service_categories": ["leadership"]},
    ).json()
    assert (
        scheme.client.get(f"/console/programmes/{other['id']}/vouchers/{made['id']}").status_code
        == 404
    )


# --- the list -------------------------------------------------------------------------


def test_the_list_filters_and_searches(scheme: Scheme) -> None:
    g, pid = scheme.groups, scheme.programme["id"]
    for group, amount in (("kumasi", 1_000), ("kumasi", 2_000), ("lagos", 3_000)):
        made = scheme.client.post(
            f"/v1/programmes/{pid}/vouchers",
            headers=scheme.funder.headers,
            json={"group_id": g[group].id, "amount": amount},
        )
        assert made.status_code == 201
    first = scheme.vouchers()[0]
    scheme.client.post(
        f"/v1/vouchers/{first['id']}/revoke", headers=scheme.funder.headers, json={"reason": "x"}
    )

    def codes(**params: str) -> set[str]:
        page = scheme.client.get(scheme.base, params=params)
        assert page.status_code == 200
        return set(re.findall(r"<code>([0-9A-Z-]+)</code>", page.text))

    everyone = {v["code"] for v in scheme.vouchers()}
    assert codes() == everyone
    assert codes(status="revoked") == {first["code"]}
    assert codes(group=g["lagos"].id) == {
        v["code"] for v in scheme.vouchers() if v["group_id"] == g["lagos"].id
    }
    assert codes(q="women") == codes(group=g["lagos"].id)
    assert codes(q=first["code"].replace("-", "").lower()) == {first["code"]}
    assert "€60.00" in scheme.client.get(scheme.base).text  # the face value in all


def test_who_sees_the_pages(scheme: Scheme) -> None:
    pid = scheme.programme["id"]
    base = f"/console/programmes/{pid}/vouchers"
    add_human(scheme.client, scheme.auditor.id, "viewer", email="audit@example.org")
    add_human(scheme.client, scheme.groups["kumasi"].id, "owner", email="g@example.org")
    auditor = TestClient(scheme.client.app)  # another browser, on the same app
    assert console_sign_in(auditor, "audit@example.org").status_code == 303
    assert auditor.get(base).status_code == 200
    assert "Issue one voucher" not in auditor.get(base).text
    assert auditor.get(f"{base}/upload").status_code == 404
    assert auditor.get(f"{base}/new").status_code == 404
    group = TestClient(scheme.client.app)
    assert console_sign_in(group, "g@example.org").status_code == 303
    assert group.get(base).status_code == 404
    other_funder = make_party(scheme.client, scheme.admin, "funder")
    add_human(scheme.client, other_funder.id, "owner", email="other@example.org")
    other = TestClient(scheme.client.app)
    assert console_sign_in(other, "other@example.org").status_code == 303
    assert other.get(base).status_code == 404
    assert other.get(f"{base}/upload").status_code == 404
