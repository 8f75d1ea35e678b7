"""Members through the API: invite, accept, act; tokens that are expired, used or
wrong; passwords; the last-owner rule; addresses unique per account without case."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories.accounts import account_body, make_party
from tests.factories.app import admin_headers, bearer, client_for
from tests.factories.people import (
    PASSWORD,
    accept,
    add_member,
    invite,
    new_email,
    onboard,
    own_key,
    people_clock,
    token_hash,
)
from voucherledger.accounts.models import ApiKey, Member
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.settings import Settings
from voucherledger.people.passwords import passwords_for

KINDS = ("admin", "funder", "manager", "group", "supplier", "auditor")
PROBLEM_JSON = "application/problem+json"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def stored(client: TestClient, member_id: str) -> Member:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with transaction(factory) as session:
        member = session.get(Member, member_id)
        assert member is not None
        session.expunge(member)
        return member


def rows(client: TestClient) -> tuple[int, int]:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with transaction(factory) as session:
        members = session.execute(select(func.count()).select_from(Member)).scalar_one()
        keys = session.execute(select(func.count()).select_from(ApiKey)).scalar_one()
    return int(members), int(keys)


# --- invite, accept, act ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_invite_accept_and_act_for_each_account_kind(settings: Settings, kind: str) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        party = make_party(client, admin, kind)
        invited = invite(client, admin, party.id, "owner", email="Owner@Example.org")
        assert invited["status"] == "invited"
        assert invited["email"] == "Owner@Example.org"  # kept as written
        assert invited["created_by"].startswith("key_")  # the admin's key
        accepted = accept(client, invited["invite_token"])
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "active"
        assert accepted.json()["last_sign_in_at"] is None
        member = stored(client, invited["id"])
        assert member.invite_token_hash is None
        assert member.invite_expires_at is None
        assert member.password_hash is not None
        assert passwords_for(settings).verify(member.password_hash, PASSWORD)

        owner = bearer(own_key(client, invited["email"], invited["id"]))
        me = client.get("/v1/me", headers=owner)
        assert me.status_code == 200, me.text
        assert me.json()["id"] == party.id
        # The owner acts: invites a colleague, who accepts and makes its own key.
        colleague = onboard(client, owner, party.id, "operator")
        assert stored(client, colleague.id).created_by == invited["id"]  # the person
        assert client.get("/v1/me", headers=colleague.headers).json()["kind"] == kind
        listed = client.get(f"/v1/accounts/{party.id}/members", headers=owner).json()["data"]
        assert [(m["id"], m["role"]) for m in listed] == [
            (invited["id"], "owner"),
            (colleague.id, "operator"),
        ]


def test_an_invited_funder_officer_runs_a_programme(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        owner = onboard(client, admin, funder.id, "owner")
        officer = onboard(client, owner.headers, funder.id, "operator")
        viewer = onboard(client, owner.headers, funder.id, "viewer")
        body = {"name": "P", "currency": "EUR", "service_categories": ["leadership"]}
        made = client.post("/v1/programmes", headers=officer.headers, json=body)
        assert made.status_code == 201, made.text
        problem(client.post("/v1/programmes", headers=viewer.headers, json=body), 403, "forbidden")
        seen = client.get(f"/v1/programmes/{made.json()['id']}", headers=viewer.headers)
        assert seen.status_code == 200, seen.text


def test_the_invite_token_is_random_shown_once_and_stored_hashed(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        before = utcnow()
        body = {"email": new_email(), "name": "Ama", "role": "approver"}
        headers = {**admin, "Idempotency-Key": "invite-ama"}
        first = client.post(f"/v1/accounts/{funder.id}/members", headers=headers, json=body)
        after = utcnow()
        assert first.status_code == 201, first.text
        token = first.json()["invite_token"]
        assert token.startswith("vlinv_")
        assert len(token.removeprefix("vlinv_")) >= 43  # 32 random bytes, base64url
        other = invite(client, admin, funder.id, "viewer")["invite_token"]
        assert other != token
        member = stored(client, first.json()["id"])
        assert member.invite_token_hash == token_hash(token)
        expires = member.invite_expires_at
        assert expires is not None
        assert before + timedelta(hours=168) <= expires <= after + timedelta(hours=168)
        # A replay answers the same invitation without its token.
        again = client.post(f"/v1/accounts/{funder.id}/members", headers=headers, json=body)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["invite_token"] is None
        assert token not in again.text


def test_the_invitation_lifetime_is_a_setting(settings: Settings) -> None:
    with client_for(settings.model_copy(update={"invite_ttl_hours": 2})) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        before = utcnow()
        invited = invite(client, admin, funder.id, "owner")
        expires = stored(client, invited["id"]).invite_expires_at
        assert expires is not None
        assert before + timedelta(hours=2) <= expires <= utcnow() + timedelta(hours=2)


def test_a_personal_key_is_shown_once_and_acts_as_the_member(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        owner = onboard(client, admin, funder.id, "owner")
        member = onboard(client, owner.headers, funder.id, "viewer")
        headers = {**member.headers, "Idempotency-Key": "key-for-viewer"}
        made = client.post(f"/v1/members/{member.id}/keys", headers=headers)
        assert made.status_code == 201, made.text
        assert set(made.json()) == {
            "id",
            "account_id",
            "member_id",
            "key",
            "created_at",
            "created_by",
        }
        assert made.json()["member_id"] == member.id
        assert made.json()["account_id"] == funder.id
        assert made.json()["created_by"] == member.id
        again = client.post(f"/v1/members/{member.id}/keys", headers=headers)
        assert again.json()["id"] == made.json()["id"]
        assert again.json()["key"] is None
        # A viewer's key reads, and changes nothing.
        viewer_key = bearer(made.json()["key"])
        assert client.get(f"/v1/members/{member.id}", headers=viewer_key).status_code == 200
        problem(client.post("/v1/programmes", headers=viewer_key, json={}), 403, "forbidden")
        operator = onboard(client, owner.headers, funder.id, "operator")
        mine = client.post(f"/v1/members/{operator.id}/keys", headers=operator.headers)
        assert mine.status_code == 201, mine.text
        key = bearer(mine.json()["key"])
        assert client.get(f"/v1/members/{operator.id}", headers=key).json()["role"] == "operator"


def test_only_the_person_makes_its_personal_key(settings: Settings) -> None:
    """A key made by an owner or the admin would let its maker act, and approve a
    payout, as the person: nobody but the person may make one."""
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        owner = add_member(client, funder.id, "owner")
        approver = add_member(client, funder.id, "approver")
        before = rows(client)
        for maker in (admin, owner.headers, funder.headers):
            problem(client.post(f"/v1/members/{approver.id}/keys", headers=maker), 403, "forbidden")
        assert rows(client) == before
        made = client.post(f"/v1/members/{approver.id}/keys", headers=approver.headers)
        assert made.status_code == 201, made.text
        assert made.json()["created_by"] == approver.id


# --- tokens: expired, used, wrong ---------------------------------------------------------


def test_an_expired_invitation_is_refused_and_a_new_one_works(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(settings) as client, people_clock(monkeypatch) as clock:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        invited = invite(client, admin, funder.id, "owner")
        clock.advance(timedelta(hours=168, seconds=1))
        expired = accept(client, invited["invite_token"])
        problem(expired, 410, "invite_expired")
        member = stored(client, invited["id"])
        assert member.status == "invited"
        assert member.password_hash is None
        # Still expired when asked again (not "invalid": the token is kept).
        problem(accept(client, invited["invite_token"]), 410, "invite_expired")

        fresh = client.post(f"/v1/members/{invited['id']}/invite", headers=admin)
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["invite_token"] != invited["invite_token"]
        problem(accept(client, invited["invite_token"]), 404, "invite_invalid")
        assert accept(client, fresh.json()["invite_token"]).status_code == 200


def test_an_invitation_is_good_until_its_expiry(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(settings) as client, people_clock(monkeypatch) as clock:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        invited = invite(client, admin, funder.id, "owner")
        clock.advance(timedelta(hours=167, minutes=59))
        assert accept(client, invited["invite_token"]).status_code == 200


def test_a_used_token_and_an_unknown_token_get_the_same_answer(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        invited = invite(client, admin, funder.id, "owner")
        assert accept(client, invited["invite_token"]).status_code == 200
        hash_before = stored(client, invited["id"]).password_hash
        reused = problem(
            accept(client, invited["invite_token"], "another fine passphrase"),
            404,
            "invite_invalid",
        )
        assert stored(client, invited["id"]).password_hash == hash_before  # not replaced
        wrong = problem(accept(client, "vlinv_" + "A" * 43), 404, "invite_invalid")
        garbage = problem(accept(client, "not even a token"), 404, "invite_invalid")
        for body in (reused, wrong, garbage):
            body.pop("request_id")
        assert reused == wrong == garbage
        # An accepted member cannot be re-invited either.
        again = client.post(f"/v1/members/{invited['id']}/invite", headers=admin)
        problem(again, 409, "invalid_state")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": "x"},
        {"password": PASSWORD},
        {"token": "", "password": PASSWORD},
        {"token": "x", "password": PASSWORD, "extra": 1},
        {"token": 12, "password": PASSWORD},
    ],
)
def test_a_malformed_acceptance_is_422(settings: Settings, body: dict[str, Any]) -> None:
    with client_for(settings) as client:
        problem(client.post("/v1/invites/accept", json=body), 422, "validation_error")


# --- passwords ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["short pass", "masterbating", "password1234", "qwertyqwerty", "123456789012", "x" * 1025],
)
def test_a_weak_or_common_password_leaves_the_invitation_open(
    settings: Settings, password: str
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        invited = invite(client, admin, funder.id, "owner")
        refused = problem(accept(client, invited["invite_token"], password), 422, "weak_password")
        assert refused["errors"][0]["loc"] == ["body", "password"]
        assert password not in refused["detail"]
        member = stored(client, invited["id"])
        assert (member.status, member.password_hash) == ("invited", None)
        assert accept(client, invited["invite_token"]).status_code == 200


def test_the_password_is_taken_exactly_as_sent(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        invited = invite(client, admin, funder.id, "owner")
        padded = "  " + PASSWORD + " "
        assert accept(client, invited["invite_token"], padded).status_code == 200
        stored_hash = stored(client, invited["id"]).password_hash
        assert stored_hash is not None
        assert passwords_for(settings).verify(stored_hash, padded)
        assert not passwords_for(settings).verify(stored_hash, PASSWORD)


# --- addresses ------------------------------------------------------------------------------


def test_an_address_is_unique_per_account_without_case(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        other = make_party(client, admin, "funder")
        invite(client, admin, funder.id, "owner", email="ama.owusu@example.org")
        before = rows(client)
        for email in ("AMA.OWUSU@example.org", "Ama.Owusu@Example.ORG", " ama.owusu@example.org "):
            body = {"email": email, "name": "Ama again", "role": "viewer"}
            response = client.post(f"/v1/accounts/{funder.id}/members", headers=admin, json=body)
            problem(response, 409, "member_exists")
        assert rows(client) == before
        # Another account may have a member with the same address.
        invite(client, admin, other.id, "owner", email="Ama.Owusu@example.org")


@pytest.mark.parametrize(
    "email",
    ["", "ama", "ama@", "@example.org", "ama@example", "ama owusu@example.org", "a@b@c.org",
     "ama@example..org", ".ama@example.org", "ama.@example.org", "ama@-example.org",
     "ama@example.org\n", "a" * 65 + "@example.org", "ama@" + "e" * 250 + ".org"],
)  # fmt: skip
def test_an_address_that_is_not_one_is_422(settings: Settings, email: str) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        body = {"email": email, "name": "Ama", "role": "viewer"}
        response = client.post(f"/v1/accounts/{funder.id}/members", headers=admin, json=body)
        problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.org", "name": "", "role": "viewer"},
        {"email": "a@example.org", "name": "A", "role": "admin"},
        {"email": "a@example.org", "name": "A"},
        {"email": "a@example.org", "name": "A\nB", "role": "viewer"},
        {"email": "a@example.org", "name": "A", "role": "viewer", "status": "active"},
    ],
)
def test_a_bad_invitation_is_422(settings: Settings, body: dict[str, Any]) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        response = client.post(f"/v1/accounts/{funder.id}/members", headers=admin, json=body)
        problem(response, 422, "validation_error")


# --- changes and the last owner ---------------------------------------------------------------


def patch(
    client: TestClient, headers: dict[str, str], member_id: str, **body: Any
) -> httpx.Response:
    response: httpx.Response = client.patch(f"/v1/members/{member_id}", headers=headers, json=body)
    return response


def test_the_last_active_owner_can_be_neither_demoted_nor_disabled(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        first = onboard(client, admin, funder.id, "owner")
        for caller in (first.headers, admin):
            problem(patch(client, caller, first.id, role="approver"), 409, "last_owner")
            problem(patch(client, caller, first.id, status="disabled"), 409, "last_owner")
        # An invited owner does not count; a renaming is no demotion.
        invite(client, first.headers, funder.id, "owner")
        problem(patch(client, first.headers, first.id, role="viewer"), 409, "last_owner")
        assert patch(client, first.headers, first.id, name="Renamed").json()["name"] == "Renamed"

        second = onboard(client, first.headers, funder.id, "owner")
        demoted = patch(client, second.headers, first.id, role="approver")
        assert demoted.status_code == 200, demoted.text
        assert demoted.json()["role"] == "approver"
        problem(patch(client, admin, second.id, status="disabled"), 409, "last_owner")
        # A disabled owner does not count either.
        assert patch(client, second.headers, first.id, role="owner").status_code == 200
        assert patch(client, second.headers, first.id, status="disabled").status_code == 200
        problem(patch(client, admin, second.id, role="operator"), 409, "last_owner")
        assert stored(client, second.id).role == "owner"


def test_disabling_a_member_revokes_its_keys_and_sessions_for_good(
    settings: Settings,
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        owner = onboard(client, admin, funder.id, "owner")
        invited = invite(client, owner.headers, funder.id, "operator")
        assert accept(client, invited["invite_token"]).status_code == 200
        officer = bearer(own_key(client, invited["email"], invited["id"]))
        signed = client.post("/v1/sessions", json={"email": invited["email"], "password": PASSWORD})
        client.cookies.clear()
        cookie = {"Cookie": f"vl_session={signed.cookies['vl_session']}"}
        assert client.get("/v1/me", headers=officer).status_code == 200
        assert client.get("/v1/me", headers=cookie).status_code == 200
        disabled = patch(client, owner.headers, invited["id"], status="disabled")
        assert disabled.json()["status"] == "disabled"
        problem(client.get("/v1/me", headers=officer), 401, "unauthenticated")
        problem(client.get("/v1/me", headers=cookie), 401, "unauthenticated")
        # Enabled again, the person signs in anew: the old key and session stay dead.
        assert patch(client, owner.headers, invited["id"], status="active").status_code == 200
        problem(client.get("/v1/me", headers=officer), 401, "unauthenticated")
        problem(client.get("/v1/me", headers=cookie), 401, "unauthenticated")
        fresh = bearer(own_key(client, invited["email"], invited["id"]))
        assert client.get("/v1/me", headers=fresh).status_code == 200
        with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
            revoked = session.execute(
                select(ApiKey.revoked_by).where(
                    ApiKey.member_id == invited["id"], ApiKey.revoked_at.is_not(None)
                )
            ).scalars()
            assert list(revoked) == [owner.id]


def test_a_role_change_applies_to_the_members_keys_at_once(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        owner = onboard(client, admin, funder.id, "owner")
        officer = onboard(client, owner.headers, funder.id, "operator")
        body = {"name": "P", "currency": "EUR", "service_categories": ["leadership"]}
        assert client.post("/v1/programmes", headers=officer.headers, json=body).status_code == 201
        assert patch(client, owner.headers, officer.id, role="viewer").json()["role"] == "viewer"
        problem(client.post("/v1/programmes", headers=officer.headers, json=body), 403, "forbidden")


def test_an_invited_members_status_is_not_set_by_hand(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        invited = invite(client, admin, funder.id, "operator")
        for status in ("active", "disabled"):
            problem(patch(client, admin, invited["id"], status=status), 409, "invalid_state")
        problem(patch(client, admin, invited["id"], status="invited"), 422, "validation_error")
        problem(patch(client, admin, invited["id"], role="owner", extra=1), 422, "validation_error")
        assert patch(client, admin, invited["id"], role="approver").json()["role"] == "approver"
        assert stored(client, invited["id"]).status == "invited"


def test_members_are_listed_a_page_at_a_time(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        made = [invite(client, admin, funder.id, "viewer")["id"] for _ in range(5)]
        add_member(client, make_party(client, admin, "funder").id, "owner")  # elsewhere
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get(f"/v1/accounts/{funder.id}/members", headers=admin, params=params)
            assert page.status_code == 200, page.text
            assert len(page.json()["data"]) <= 2
            seen += [m["id"] for m in page.json()["data"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(made)
        assert "invite_token" not in page.text


# --- funders and managers onboard their groups and suppliers ------------------------------------


@pytest.mark.parametrize("onboarder", ["funder", "manager"])
@pytest.mark.parametrize("kind", ["group", "supplier"])
def test_a_funder_or_manager_creates_an_account_and_invites_its_first_owner(
    settings: Settings, onboarder: str, kind: str
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        caller = make_party(client, admin, onboarder)
        created = client.post("/v1/accounts", headers=caller.headers, json=account_body(kind))
        assert created.status_code == 201, created.text
        account_id = created.json()["id"]
        # Only an owner, and only the first.
        as_operator = {"email": new_email(), "name": "Op", "role": "operator"}
        refused = client.post(
            f"/v1/accounts/{account_id}/members", headers=caller.headers, json=as_operator
        )
        problem(refused, 403, "forbidden")
        invited = invite(client, caller.headers, account_id, "owner")
        assert invited["created_by"] == caller.key.removeprefix("vl_").rsplit("_", 1)[0]
        second = {"email": new_email(), "name": "Second", "role": "owner"}
        again = client.post(
            f"/v1/accounts/{account_id}/members", headers=caller.headers, json=second
        )
        problem(again, 403, "forbidden")
        # The funder sees no members of the account it onboarded.
        problem(
            client.get(f"/v1/members/{invited['id']}", headers=caller.headers), 404, "not_found"
        )
        problem(
            client.get(f"/v1/accounts/{account_id}/members", headers=caller.headers),
            403,
            "forbidden",
        )
        # The person accepts, signs in and makes its own key.
        assert accept(client, invited["invite_token"]).status_code == 200
        owner = bearer(own_key(client, invited["email"], invited["id"]))
        assert client.get("/v1/me", headers=owner).json()["kind"] == kind
        onboard(client, owner, account_id, "operator")


def test_an_account_someone_holds_already_is_not_onboarded_by_a_funder(
    settings: Settings,
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        body = {"email": new_email(), "name": "Taker", "role": "owner"}
        for taken in ("a key", "a member"):
            made = client.post("/v1/accounts", headers=funder.headers, json=account_body("group"))
            group_id = made.json()["id"]
            if taken == "a key":
                assert client.post(f"/v1/accounts/{group_id}/keys", headers=admin).is_success
            else:
                add_member(client, group_id, "operator")
            response = client.post(
                f"/v1/accounts/{group_id}/members", headers=funder.headers, json=body
            )
            problem(response, 403, "forbidden")
            assert "taken up" in response.json()["detail"]
        for kind in ("funder", "manager", "auditor"):  # not the funder's to onboard
            target = make_party(client, admin, kind)
            response = client.post(
                f"/v1/accounts/{target.id}/members", headers=funder.headers, json=body
            )
            problem(response, 404, "not_found")


def test_a_funder_onboards_only_the_accounts_it_created(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        rival = make_party(client, admin, "funder")
        body = {"email": new_email(), "name": "Taker", "role": "owner"}
        by_admin = client.post("/v1/accounts", headers=admin, json=account_body("group"))
        by_rival = client.post("/v1/accounts", headers=rival.headers, json=account_body("group"))
        for made in (by_admin, by_rival):
            assert made.status_code == 201, made.text
            refused = client.post(
                f"/v1/accounts/{made.json()['id']}/members", headers=funder.headers, json=body
            )
            problem(refused, 403, "forbidden")
        # The creator's people act for it too: its owner invites the first owner.
        funder_owner = add_member(client, funder.id, "owner")
        mine = client.post(
            "/v1/accounts", headers=funder_owner.headers, json=account_body("supplier")
        )
        invite(client, funder.headers, mine.json()["id"], "owner")


@pytest.mark.parametrize("kind", ["admin", "funder", "manager", "auditor"])
def test_a_funder_or_manager_creates_no_other_kind_of_account(
    settings: Settings, kind: str
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        for creator in ("funder", "manager"):
            party = make_party(client, admin, creator)
            response = client.post("/v1/accounts", headers=party.headers, json=account_body(kind))
            problem(response, 403, "forbidden")


def test_a_group_or_supplier_creates_no_account(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        for creator in ("group", "supplier", "auditor"):
            party = make_party(client, admin, creator)
            response = client.post(
                "/v1/accounts", headers=party.headers, json=account_body("group")
            )
            problem(response, 403, "forbidden")


# --- the admin's people, and who revokes keys ---------------------------------------------


def test_an_admin_member_below_owner_has_no_admin_powers(settings: Settings) -> None:
    """An operator of the admin account acts for it (creates accounts) but cannot make
    itself an owner, mint keys or manage other accounts' people."""
    with client_for(settings) as client:
        admin = admin_headers(client)
        admin_id = client.get("/v1/me", headers=admin).json()["id"]
        operator = add_member(client, admin_id, "operator")
        funder = make_party(client, admin, "funder")
        funder_owner = add_member(client, funder.id, "owner")
        before = rows(client)
        problem(patch(client, operator.headers, operator.id, role="owner"), 403, "forbidden")
        problem(
            client.post(f"/v1/accounts/{admin_id}/keys", headers=operator.headers), 403, "forbidden"
        )
        problem(
            client.post(f"/v1/accounts/{funder.id}/keys", headers=operator.headers),
            403,
            "forbidden",
        )
        body = {"email": new_email(), "name": "X", "role": "owner"}
        problem(
            client.post(f"/v1/accounts/{funder.id}/members", headers=operator.headers, json=body),
            403,
            "forbidden",
        )
        problem(patch(client, operator.headers, funder_owner.id, role="viewer"), 403, "forbidden")
        assert rows(client) == before
        made = client.post("/v1/accounts", headers=operator.headers, json=account_body("group"))
        assert made.status_code == 201, made.text
        # An owner of the admin account has the admin's powers.
        admin_owner = add_member(client, admin_id, "owner")
        promoted = patch(client, admin_owner.headers, operator.id, role="approver")
        assert promoted.status_code == 200, promoted.text
        minted = client.post(f"/v1/accounts/{funder.id}/keys", headers=admin_owner.headers)
        assert minted.status_code == 201, minted.text


def test_owners_revoke_their_accounts_keys_and_members_their_own(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        other = make_party(client, admin, "funder")
        owner = add_member(client, funder.id, "owner")
        officer = add_member(client, funder.id, "operator")
        colleague = add_member(client, funder.id, "operator")

        def key_id(person_key: str) -> str:
            return person_key.removeprefix("vl_").rsplit("_", 1)[0]

        # Another party's key is 404; a colleague's is 403; the member's own is 204.
        problem(
            client.delete(f"/v1/keys/{key_id(officer.key)}", headers=other.headers),
            404,
            "not_found",
        )
        problem(
            client.delete(f"/v1/keys/{key_id(officer.key)}", headers=colleague.headers),
            403,
            "forbidden",
        )
        assert client.get("/v1/me", headers=officer.headers).status_code == 200
        gone = client.delete(f"/v1/keys/{key_id(officer.key)}", headers=officer.headers)
        assert gone.status_code == 204, gone.text
        problem(client.get("/v1/me", headers=officer.headers), 401, "unauthenticated")
        # The owner revokes a colleague's key and the account's own key.
        assert (
            client.delete(f"/v1/keys/{key_id(colleague.key)}", headers=owner.headers).status_code
            == 204
        )
        problem(client.get("/v1/me", headers=colleague.headers), 401, "unauthenticated")
        assert (
            client.delete(f"/v1/keys/{key_id(funder.key)}", headers=owner.headers).status_code
            == 204
        )
        problem(client.get("/v1/me", headers=funder.headers), 401, "unauthenticated")
