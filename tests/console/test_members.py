"""The members of my account, driven without a browser: an owner invites (the link
shown once), changes a role and disables; the last owner is kept; a non-owner reads
only themself and is refused any change; the admin has its own pages."""

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
from tests.factories.sessions import Human, add_human
from voucherledger.core.settings import Settings

MEMBERS = "/console/members"
_LINK = re.compile(r'value="(http://testserver/console/invite\?token=(vlinv_[^"]+))"')


@dataclass
class Office:
    client: TestClient  # signed in as the owner
    funder: Party
    owner: Human
    operator: Human

    def members(self) -> list[dict[str, Any]]:
        listed = self.client.get(
            f"/v1/accounts/{self.funder.id}/members", headers=self.owner.person.headers
        )
        data: list[dict[str, Any]] = listed.json()["data"]
        return data

    def member(self, member_id: str) -> dict[str, Any]:
        return next(m for m in self.members() if m["id"] == member_id)


@pytest.fixture
def office(settings: Settings) -> Iterator[Office]:
    with console_client(settings) as client:
        funder = make_party(client, admin_headers(client), "funder")
        owner = add_human(client, funder.id, "owner")
        operator = add_human(client, funder.id, "operator")
        signed = console_sign_in(client, owner.email)
        assert signed.status_code == 303, signed.text
        yield Office(client, funder, owner, operator)


def test_an_owner_sees_every_member_as_the_api_lists_them(office: Office) -> None:
    page = office.client.get(MEMBERS)
    assert page.status_code == 200
    for member in office.members():
        assert member["email"] in page.text
    assert "Invite a member" in page.text


def test_an_owner_invites_and_sees_the_link_once(office: Office) -> None:
    form = form_on(office.client, MEMBERS, MEMBERS)
    body = {"name": "Ama Mensah", "email": "ama@funder.example", "role": "approver"}
    made = form.post(office.client, **body)
    assert made.status_code == 201, made.text
    assert _LINK.search(made.text)
    invited = next(m for m in office.members() if m["email"] == "ama@funder.example")
    assert (invited["role"], invited["status"]) == ("approver", "invited")

    replay = form.post(office.client, **body)  # a reload of the POST
    assert replay.status_code == 201
    assert not _LINK.search(replay.text)
    assert "is not shown again" in replay.text
    assert f'action="/console/members/{invited["id"]}/invite"' in replay.text
    assert len([m for m in office.members() if m["email"] == "ama@funder.example"]) == 1

    fresh = form_on(office.client, MEMBERS, f"/console/members/{invited['id']}/invite")
    again = fresh.post(office.client)
    assert again.status_code == 200
    assert _LINK.search(again.text)


def test_a_taken_email_is_refused_in_words(office: Office) -> None:
    form = form_on(office.client, MEMBERS, MEMBERS)
    refused = form.post(office.client, name="Again", email=office.operator.email, role="viewer")
    assert refused.status_code == 409
    assert "This person is already a member of the account." in refused.text
    assert 'value="Again"' in refused.text


def test_an_owner_changes_a_role_and_disables_a_member(office: Office) -> None:
    target = office.operator.person.id
    action = f"/console/members/{target}"
    form = form_on(office.client, MEMBERS, action)
    changed = form.post(office.client, role="approver")
    assert changed.status_code == 303
    assert changed.headers["location"] == f"{MEMBERS}?notice=member_updated"
    assert office.member(target)["role"] == "approver"

    page = office.client.get(MEMBERS).text
    assert "Disable " in page
    csrf = hidden_fields(page)["csrf_token"]
    disabled = office.client.post(
        action, data={"csrf_token": csrf, "status": "disabled"}, follow_redirects=False
    )
    assert disabled.status_code == 303
    assert office.member(target)["status"] == "disabled"
    assert "Enable " in office.client.get(MEMBERS).text


def test_the_last_owner_is_kept(office: Office) -> None:
    page = office.client.get(MEMBERS).text
    csrf = hidden_fields(page)["csrf_token"]
    refused = office.client.post(
        f"/console/members/{office.owner.person.id}",
        data={"csrf_token": csrf, "status": "disabled"},
        follow_redirects=False,
    )
    assert refused.status_code == 409
    assert "An account must keep at least one owner." in refused.text
    assert office.member(office.owner.person.id)["status"] == "active"
    demoted = office.client.post(
        f"/console/members/{office.owner.person.id}",
        data={"csrf_token": csrf, "role": "viewer"},
        follow_redirects=False,
    )
    assert demoted.status_code == 409
    assert office.member(office.owner.person.id)["role"] == "owner"


def test_a_non_owner_reads_only_themself_and_is_refused_changes(office: Office) -> None:
    office.client.cookies.clear()
    assert console_sign_in(office.client, office.operator.email).status_code == 303
    page = office.client.get(MEMBERS)
    assert page.status_code == 200
    assert "Only the owners of your account" in page.text
    assert office.owner.email not in page.text
    assert "Invite a member" not in page.text
    csrf = hidden_fields(page.text)["csrf_token"]
    refused = office.client.post(
        f"/console/members/{office.owner.person.id}",
        data={"csrf_token": csrf, "status": "disabled"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert office.member(office.owner.person.id)["status"] == "active"
    invite = office.client.post(
        MEMBERS,
        data={"csrf_token": csrf, "name": "X", "email": "x@funder.example", "role": "owner"},
        follow_redirects=False,
    )
    assert invite.status_code == 403
    assert "Your role does not allow this." in invite.text
    assert all(m["email"] != "x@funder.example" for m in office.members())


def test_a_form_without_its_csrf_token_changes_nothing(office: Office) -> None:
    refused = office.client.post(
        f"/console/members/{office.operator.person.id}",
        data={"role": "owner"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert office.member(office.operator.person.id)["role"] == "operator"


def test_the_admin_has_its_own_pages(settings: Settings) -> None:
    with console_client(settings) as client:
        key = admin_headers(client)
        admin_id = client.get("/v1/me", headers=key).json()["id"]
        admin = add_human(client, admin_id, "owner")
        assert console_sign_in(client, admin.email).status_code == 303
        assert client.get(MEMBERS).status_code == 404
