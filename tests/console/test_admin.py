"""The scheme admin's pages, driven without a browser: what they show from the API,
what they refuse, the invitation link shown once, and keys revoked in two steps."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, bearer
from tests.factories.console import console_client, console_sign_in, form_on
from tests.factories.people import accept
from tests.factories.sessions import add_human
from voucherledger.core.settings import Settings

ACCOUNTS = "/console/admin/accounts"
NEW = "/console/admin/accounts/new"
_LINK = re.compile(r'value="(http://testserver/console/invite\?token=(vlinv_[^"]+))"')


@dataclass
class Admin:
    client: TestClient
    key: dict[str, str]  # the admin account's own key, for set-up and checks
    account_id: str


@pytest.fixture
def admin(settings: Settings) -> Iterator[Admin]:
    """An owner of the admin account, signed in to the console."""
    with console_client(settings) as client:
        key = admin_headers(client)
        account_id = client.get("/v1/me", headers=key).json()["id"]
        add_human(client, account_id, "owner", email="admin@scheme.example")
        signed = console_sign_in(client, "admin@scheme.example")
        assert signed.status_code == 303, signed.text
        yield Admin(client, key, account_id)


def accounts_named(admin: Admin, name: str) -> list[dict[str, Any]]:
    listed = admin.client.get("/v1/accounts", headers=admin.key, params={"limit": 500})
    return [a for a in listed.json()["data"] if a["name"] == name]


def members_of(admin: Admin, account_id: str) -> list[dict[str, Any]]:
    response = admin.client.get(f"/v1/accounts/{account_id}/members", headers=admin.key)
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def main_of(html: str) -> str:
    found = re.search(r"<main.*</main>", html, re.S)
    assert found, html
    return found[0]


def group_form(**overrides: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": "group",
        "name": "Kumasi Hometown Association",
        "group_type": "hometown_association",
        "origin_country": "GH",
        "residence_country": "NL",
        "women_led": "yes",
    }
    values.update(overrides)
    return values


# --- the accounts -------------------------------------------------------------------


def test_the_accounts_page_lists_every_account_and_filters_by_kind(admin: Admin) -> None:
    client = admin.client
    make_party(client, admin.key, "group", name="Somali Women's Circle")
    make_party(client, admin.key, "supplier", name="Civic Skills Academy")
    page = client.get(ACCOUNTS)
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "Somali Women&#39;s Circle" in page.text
    assert "Civic Skills Academy" in page.text
    only_groups = client.get(ACCOUNTS, params={"kind": "group"})
    assert "Somali Women&#39;s Circle" in only_groups.text
    assert "Civic Skills Academy" not in only_groups.text
    # Every kind the API creates can be chosen.
    for kind in ("funder", "manager", "group", "supplier", "auditor", "admin"):
        assert f'<option value="{kind}">' in page.text


def test_a_group_is_created_with_its_profile_and_a_double_submit_makes_one(
    admin: Admin,
) -> None:
    client = admin.client
    form = form_on(client, f"{NEW}?kind=group", NEW)
    assert "Type of group" in client.get(f"{NEW}?kind=group").text
    made = form.post(client, **group_form())
    assert made.status_code == 303, made.text
    location = made.headers["location"]
    assert re.fullmatch(r"/console/admin/accounts/acc_\w+\?notice=account_created", location)
    again = form.post(client, **group_form())  # the same form, sent again
    assert again.headers["location"] == location
    (group,) = accounts_named(admin, "Kumasi Hometown Association")
    assert group["group"] == {
        "group_type": "hometown_association",
        "origin_country": "GH",
        "residence_country": "NL",
        "women_led": True,
    }
    shown = client.get(location)
    assert "The account is made. Invite its first owner now." in shown.text
    assert "Hometown association" in shown.text
    assert "Ghana" in shown.text
    assert "Netherlands" in shown.text
    assert "Invite the first owner" in shown.text


def test_a_group_without_its_profile_is_refused_with_the_fields_named(admin: Admin) -> None:
    client = admin.client
    form = form_on(client, f"{NEW}?kind=group", NEW)
    refused = form.post(client, **group_form(group_type="", origin_country="XX"))
    assert refused.status_code == 422, refused.text
    assert "Some fields need correcting." in refused.text
    assert 'id="f-group_type-error"' in refused.text
    assert 'id="f-origin_country-error"' in refused.text
    # The values typed are kept.
    assert 'value="Kumasi Hometown Association"' in refused.text
    assert '<option value="NL" selected>' in refused.text
    assert accounts_named(admin, "Kumasi Hometown Association") == []


def test_a_supplier_needs_a_category(admin: Admin) -> None:
    client = admin.client
    form = form_on(client, f"{NEW}?kind=supplier", NEW)
    body = {"kind": "supplier", "name": "Open Door Digital", "country": "NL"}
    refused = form.post(client, **body)
    assert refused.status_code == 422, refused.text
    assert 'id="f-service_categories-error"' in refused.text
    assert accounts_named(admin, "Open Door Digital") == []
    made = form.post(client, **body, service_categories=["digital_skills", "monitoring_evaluation"])
    assert made.status_code == 303, made.text
    (supplier,) = accounts_named(admin, "Open Door Digital")
    assert supplier["supplier"]["service_categories"] == ["digital_skills", "monitoring_evaluation"]
    assert supplier["country"] == "NL"


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(admin: Admin) -> None:
    client = admin.client
    form = form_on(client, f"{NEW}?kind=funder", NEW)
    fields = {k: v for k, v in form.fields.items() if k != "csrf_token"}
    refused = client.post(
        NEW, data={**fields, "kind": "funder", "name": "Forged Fund"}, follow_redirects=False
    )
    assert refused.status_code == 403, refused.text
    assert accounts_named(admin, "Forged Fund") == []
    group = make_party(client, admin.key, "group")
    invite = client.post(
        f"{ACCOUNTS}/{group.id}/members",
        data={"email": "x@example.org", "name": "X", "role": "owner"},
        follow_redirects=False,
    )
    assert invite.status_code == 403
    assert members_of(admin, group.id) == []


def test_a_viewer_of_the_admin_account_reads_but_is_refused_changes(
    settings: Settings,
) -> None:
    with console_client(settings) as client:
        key = admin_headers(client)
        account_id = client.get("/v1/me", headers=key).json()["id"]
        add_human(client, account_id, "viewer", email="viewer@scheme.example")
        assert console_sign_in(client, "viewer@scheme.example").status_code == 303
        assert client.get(ACCOUNTS).status_code == 200
        form = form_on(client, f"{NEW}?kind=funder", NEW)
        refused = form.post(client, kind="funder", name="A fund")
        assert refused.status_code == 403, refused.text
        assert "Your role does not allow this." in refused.text
        listed = client.get("/v1/accounts", headers=key, params={"kind": "funder"})
        assert listed.json()["data"] == []


def test_the_admin_pages_are_not_found_for_other_parties(settings: Settings) -> None:
    with console_client(settings) as client:
        key = admin_headers(client)
        group = make_party(client, key, "group")
        funder = make_party(client, key, "funder")
        add_human(client, funder.id, "owner", email="owner@fund.example")
        assert console_sign_in(client, "owner@fund.example").status_code == 303
        unknown = client.get("/console/no/such/page")
        assert unknown.status_code == 404
        for path in (ACCOUNTS, NEW, f"{ACCOUNTS}/{group.id}", f"{ACCOUNTS}/{funder.id}"):
            page = client.get(path)
            assert page.status_code == 404, path
            assert main_of(page.text) == main_of(unknown.text)


def test_an_unknown_account_is_the_not_found_page(admin: Admin) -> None:
    unknown = admin.client.get(f"{ACCOUNTS}/acc_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert unknown.status_code == 404
    assert "There is nothing here, or it is not yours to see." in unknown.text


# --- members and invitations --------------------------------------------------------


def test_the_invitation_link_is_shown_once_and_a_reload_says_so(admin: Admin) -> None:
    client = admin.client
    group = make_party(client, admin.key, "group")
    page = f"{ACCOUNTS}/{group.id}"
    action = f"{page}/members"
    form = form_on(client, page, action)
    person = {"email": "ama@kumasi.example", "name": "Ama Owusu", "role": "owner"}
    shown = form.post(client, **person)
    assert shown.status_code == 201, shown.text
    found = _LINK.search(shown.text)
    assert found, shown.text
    link, token = found[1], found[2]
    assert "data-copy" in shown.text
    # A reload posts the same form again: the API replays its answer without the
    # token, and the page says the link was shown already.
    reloaded = form.post(client, **person)
    assert reloaded.status_code == 201
    assert token not in reloaded.text
    assert "is not shown again" in reloaded.text
    assert len(members_of(admin, group.id)) == 1
    # Neither the account page nor anything else shows the link again.
    assert token not in client.get(page).text
    assert link.startswith("http://testserver/console/invite?token=")
    assert accept(client, token).status_code == 200
    members = client.get(page)
    assert "Ama Owusu" in members.text
    assert '<span class="status active">Active</span>' in members.text


def test_a_lost_link_is_replaced_by_a_new_one(admin: Admin) -> None:
    client = admin.client
    group = make_party(client, admin.key, "group")
    page = f"{ACCOUNTS}/{group.id}"
    form = form_on(client, page, f"{page}/members")
    person = {"email": "kofi@kumasi.example", "name": "Kofi", "role": "owner"}
    first = _LINK.search(form.post(client, **person).text)
    assert first
    reloaded = form.post(client, **person)
    (member,) = members_of(admin, group.id)
    again = form_on(client, page, f"/console/admin/members/{member['id']}/invite")
    fresh = again.post(client)
    assert fresh.status_code == 200, fresh.text
    second = _LINK.search(fresh.text)
    assert second
    assert second[2] != first[2]
    assert f"/console/admin/members/{member['id']}/invite" in reloaded.text
    assert accept(client, first[2]).status_code == 404  # the first link stopped
    assert accept(client, second[2]).status_code == 200


def test_inviting_refusals_keep_the_form(admin: Admin) -> None:
    client = admin.client
    group = make_party(client, admin.key, "group")
    page = f"{ACCOUNTS}/{group.id}"
    action = f"{page}/members"
    bad = form_on(client, page, action).post(
        client, email="not an address", name="Ama", role="owner"
    )
    assert bad.status_code == 422, bad.text
    assert 'id="f-email-error"' in bad.text
    assert 'value="Ama"' in bad.text
    person = {"email": "ama@kumasi.example", "name": "Ama", "role": "owner"}
    assert form_on(client, page, action).post(client, **person).status_code == 201
    twice = form_on(client, page, action).post(client, **{**person, "email": "AMA@kumasi.example"})
    assert twice.status_code == 409, twice.text
    assert "This person is already a member of the account." in twice.text
    assert len(members_of(admin, group.id)) == 1


# --- keys -----------------------------------------------------------------------------


def test_keys_are_listed_and_revoked_after_a_second_step(admin: Admin) -> None:
    client = admin.client
    group = make_party(client, admin.key, "group")
    key_id = group.key.removeprefix("vl_").rsplit("_", 1)[0]
    page = client.get(f"{ACCOUNTS}/{group.id}")
    assert key_id in page.text
    assert "The account (a machine)" in page.text
    assert group.key.rsplit("_", 1)[1] not in page.text
    confirm_url = f"{ACCOUNTS}/{group.id}/keys/{key_id}/revoke"
    assert f'href="{confirm_url}"' in page.text
    confirm = form_on(client, confirm_url, confirm_url)
    # Opening the confirmation revokes nothing.
    assert client.get("/v1/me", headers=bearer(group.key)).status_code == 200
    done = confirm.post(client)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{ACCOUNTS}/{group.id}?notice=key_revoked"
    assert client.get("/v1/me", headers=bearer(group.key)).status_code == 401
    after = client.get(done.headers["location"])
    assert "The key is revoked: it no longer works." in after.text
    assert '<span class="status revoked">Revoked' in after.text
    assert f'href="{confirm_url}"' not in after.text


def test_a_key_under_another_accounts_address_is_not_found(admin: Admin) -> None:
    client = admin.client
    group = make_party(client, admin.key, "group")
    other = make_party(client, admin.key, "group")
    key_id = group.key.removeprefix("vl_").rsplit("_", 1)[0]
    wrong = f"{ACCOUNTS}/{other.id}/keys/{key_id}/revoke"
    assert client.get(wrong).status_code == 404
    right = form_on(
        client,
        f"{ACCOUNTS}/{group.id}/keys/{key_id}/revoke",
        f"{ACCOUNTS}/{group.id}/keys/{key_id}/revoke",
    )
    posted = client.post(wrong, data=right.fields, follow_redirects=False)
    assert posted.status_code == 404
    assert client.get("/v1/me", headers=bearer(group.key)).status_code == 200


def test_a_new_account_body_carries_only_its_kinds_profile() -> None:
    from starlette.datastructures import FormData

    from voucherledger.console.admin import account_body as body_of

    form = FormData(
        [
            ("kind", "funder"),
            ("name", " Agency "),
            ("group_type", "youth_group"),
            ("service_categories", "leadership"),
        ]
    )
    assert body_of(form) == {"kind": "funder", "name": "Agency"}
