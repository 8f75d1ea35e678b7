"""Browser sessions: sign in, act with the cookie and the CSRF token, sign out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers
from tests.factories.people import PASSWORD, sign_in, sign_in_body
from tests.factories.programmes import assert_problem
from tests.factories.sessions import add_human, https_client, session_clock
from voucherledger.accounts.models import Member
from voucherledger.core.auth import hash_secret
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings
from voucherledger.people.passwords import passwords_for
from voucherledger.people.session_models import WebSession

KINDS = ("admin", "funder", "manager", "group", "supplier", "auditor")


def test_sign_in_act_and_sign_out_for_every_account_kind(settings: Settings) -> None:
    with https_client(settings) as client:
        admin = admin_headers(client)
        for kind in KINDS:
            party = make_party(client, admin, kind)
            human = add_human(client, party.id, "owner", email=f"Owner.{kind}@Example.org")
            # the email is found whatever its case
            signed = sign_in(client, human.email.upper())
            assert signed.body["member"]["id"] == human.person.id
            assert signed.body["member"]["email"] == human.email
            assert signed.body["account"]["id"] == party.id
            assert signed.body["account"]["kind"] == kind

            me = client.get("/v1/me", headers=signed.reads)
            assert me.status_code == 200, me.text
            assert me.json()["id"] == party.id
            assert me.json()["member"]["role"] == "owner"
            assert me.json()["session"]["csrf_token"] == signed.csrf
            # a state-changing request with the cookie and the CSRF token: start a TOTP
            # setup, which every member may do
            setup = client.post("/v1/me/totp", headers=signed.writes)
            assert setup.status_code == 201, setup.text

            out = client.delete("/v1/sessions/current", headers=signed.writes)
            assert out.status_code == 204, out.text
            assert "vl_session=" in out.headers["set-cookie"]
            assert "Max-Age=0" in out.headers["set-cookie"]
            assert_problem(client.get("/v1/me", headers=signed.reads), 401, "unauthenticated")


def test_the_cookie_is_httponly_samesite_lax_secure_and_for_every_path(
    settings: Settings,
) -> None:
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        response = client.post("/v1/sessions", json=sign_in_body(human.email))
        assert response.status_code == 201, response.text
        cookie = response.headers["set-cookie"]
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert attributes[0].startswith("vl_session=")
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert "secure" in attributes
        assert "path=/" in attributes
        assert f"max-age={12 * 3600}" in attributes
        assert response.headers["cache-control"] == "no-store"
        # the body never holds the session token
        token = response.cookies["vl_session"]
        assert token not in response.text
        # over https the client's jar sends it back by itself
        assert client.get("/v1/me").json()["member"]["id"] == human.person.id
        # the database holds its hash only
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with factory() as session:
            row = session.execute(select(WebSession)).scalar_one()
        assert row.token_hash == hash_secret(token)
        assert token not in (row.token_hash, row.csrf_token)
        assert row.client_address == "203.0.113.7"


def test_the_development_setting_drops_secure(settings: Settings) -> None:
    with https_client(settings.model_copy(update={"session_cookie_secure": False})) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        response = client.post("/v1/sessions", json=sign_in_body(human.email))
        attributes = [p.strip().lower() for p in response.headers["set-cookie"].split(";")]
        assert "secure" not in attributes
        assert "httponly" in attributes


def test_csrf_is_required_for_changes_made_with_the_cookie_only(settings: Settings) -> None:
    with https_client(settings) as client:
        admin = admin_headers(client)
        party = make_party(client, admin, "funder")
        human = add_human(client, party.id, "owner")
        signed = sign_in(client, human.email)
        body = {"require_totp": False}
        path = f"/v1/accounts/{party.id}/security"
        assert_problem(client.patch(path, json=body, headers=signed.reads), 403, "csrf_failed")
        wrong = {**signed.reads, "X-CSRF-Token": signed.csrf[:-1] + "x"}
        assert_problem(client.patch(path, json=body, headers=wrong), 403, "csrf_failed")
        empty = {**signed.reads, "X-CSRF-Token": ""}
        assert_problem(client.patch(path, json=body, headers=empty), 403, "csrf_failed")
        # another session's token does not do either
        other = sign_in(client, human.email)
        crossed = {**signed.reads, "X-CSRF-Token": other.csrf}
        assert_problem(client.patch(path, json=body, headers=crossed), 403, "csrf_failed")
        # sign-out is a change too: a forged one is refused
        assert_problem(
            client.delete("/v1/sessions/current", headers=signed.reads), 403, "csrf_failed"
        )
        assert client.patch(path, json=body, headers=signed.writes).status_code == 200
        # reads need none; a Bearer key needs none
        assert client.get("/v1/me", headers=signed.reads).status_code == 200
        assert client.patch(path, json=body, headers=human.person.headers).status_code == 200


def test_wrong_email_and_wrong_password_get_the_same_answer(settings: Settings) -> None:
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        wrong_password = client.post(
            "/v1/sessions", json=sign_in_body(human.email, "not the password at all")
        )
        wrong_email = client.post(
            "/v1/sessions", json=sign_in_body("nobody@example.org", "not the password at all")
        )
        for response in (wrong_password, wrong_email):
            assert_problem(response, 401, "invalid_credentials")
            assert "set-cookie" not in response.headers

        def shape(response: object) -> dict[str, object]:
            body = dict(response.json())  # type: ignore[attr-defined]
            body.pop("request_id")
            return body

        assert shape(wrong_password) == shape(wrong_email)
        assert wrong_password.headers.keys() == wrong_email.headers.keys()


def test_wrong_email_spends_a_password_verification_too(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timing class: an unknown email costs one Argon2id verification, as a wrong
    password does (counted, not timed)."""
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        passwords = passwords_for(settings)
        calls: list[str] = []
        real_verify = type(passwords).verify

        def counting(self: object, stored: str, password: str) -> bool:
            calls.append(stored)
            return real_verify(self, stored, password)  # type: ignore[arg-type]

        monkeypatch.setattr(type(passwords), "verify", counting)
        client.post("/v1/sessions", json=sign_in_body(human.email, "a wrong password!"))
        assert len(calls) == 1
        client.post("/v1/sessions", json=sign_in_body("nobody@example.org", "a wrong password"))
        assert len(calls) == 2


def test_only_active_members_sign_in(settings: Settings) -> None:
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        for status in ("disabled", "invited"):
            with transaction(factory) as session:
                member = session.get(Member, human.person.id)
                assert member is not None
                member.status = status
            response = client.post("/v1/sessions", json=sign_in_body(human.email))
            assert_problem(response, 401, "invalid_credentials")


def test_disabling_a_member_ends_its_sessions_at_once(settings: Settings) -> None:
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        signed = sign_in(client, human.email)
        assert client.get("/v1/me", headers=signed.reads).status_code == 200
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with transaction(factory) as session:
            member = session.get(Member, human.person.id)
            assert member is not None
            member.status = "disabled"
        assert_problem(client.get("/v1/me", headers=signed.reads), 401, "unauthenticated")


def test_a_role_change_applies_to_a_live_session(settings: Settings) -> None:
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "owner")
        signed = sign_in(client, human.email)
        path = f"/v1/accounts/{party.id}/security"
        body = {"require_totp": False}
        assert client.patch(path, json=body, headers=signed.writes).status_code == 200
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with transaction(factory) as session:
            member = session.get(Member, human.person.id)
            assert member is not None
            member.role = "viewer"
        assert_problem(client.patch(path, json=body, headers=signed.writes), 403, "forbidden")


def test_idle_and_absolute_expiry(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with https_client(settings) as client, session_clock(monkeypatch) as clock:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")

        idle = sign_in(client, human.email)
        clock.advance(timedelta(minutes=29))
        assert client.get("/v1/me", headers=idle.reads).status_code == 200
        # that request moved the idle timeout on: 29 more minutes are fine
        clock.advance(timedelta(minutes=29))
        assert client.get("/v1/me", headers=idle.reads).status_code == 200
        clock.advance(timedelta(minutes=30))
        assert_problem(client.get("/v1/me", headers=idle.reads), 401, "unauthenticated")

        busy = sign_in(client, human.email)
        expires_at = busy.body["expires_at"]
        for _ in range(12 * 4 - 1):  # a request every 15 minutes for just under 12 hours
            clock.advance(timedelta(minutes=15))
            assert client.get("/v1/me", headers=busy.reads).status_code == 200
        assert client.get("/v1/me", headers=busy.reads).json()["session"]["expires_at"] == (
            expires_at
        )
        clock.advance(timedelta(minutes=15))  # 12 hours after sign-in
        assert_problem(client.get("/v1/me", headers=busy.reads), 401, "unauthenticated")


def test_writes_slide_the_idle_timeout_too_and_settings_set_both(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = settings.model_copy(update={"session_idle_minutes": 5, "session_absolute_hours": 1})
    with https_client(short) as client, session_clock(monkeypatch) as clock:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        signed = sign_in(client, human.email)
        for _ in range(3):
            clock.advance(timedelta(minutes=4))
            assert client.post("/v1/me/totp", headers=signed.writes).status_code == 201
        clock.advance(timedelta(minutes=5))
        assert_problem(client.get("/v1/me", headers=signed.reads), 401, "unauthenticated")

        again = sign_in(client, human.email)
        for step in [4] * 14 + [3]:  # kept alive for 59 minutes
            clock.advance(timedelta(minutes=step))
            assert client.get("/v1/me", headers=again.reads).status_code == 200
        clock.advance(timedelta(minutes=1))  # an hour after sign-in
        assert_problem(client.get("/v1/me", headers=again.reads), 401, "unauthenticated")


def test_last_seen_is_written_at_most_once_a_minute(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with https_client(settings) as client, session_clock(monkeypatch) as clock:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        signed = sign_in(client, human.email)
        factory = client.app.state.session_factory  # type: ignore[attr-defined]

        def last_seen() -> object:
            with factory() as session:
                return session.execute(select(WebSession.last_seen_at)).scalar_one()

        first = last_seen()
        clock.advance(timedelta(seconds=30))
        client.get("/v1/me", headers=signed.reads)
        assert last_seen() == first
        clock.advance(timedelta(seconds=31))
        client.get("/v1/me", headers=signed.reads)
        assert last_seen() != first


def test_sign_in_rehashes_and_records_the_time(settings: Settings) -> None:
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        stronger = settings.model_copy(update={"password_time_cost": 2})
        with transaction(factory) as session:
            member = session.get(Member, human.person.id)
            assert member is not None
            member.password_hash = passwords_for(stronger).hash(PASSWORD)
            old_hash = member.password_hash
        signed = sign_in(client, human.email)
        with factory() as session:
            member = session.get(Member, human.person.id)
            assert member is not None
            assert member.password_hash != old_hash
            assert not passwords_for(settings).needs_rehash(member.password_hash or "")
            assert member.last_sign_in_at is not None
        assert signed.body["member"]["last_sign_in_at"] is not None
        sign_in(client, human.email)  # the new hash verifies


def test_an_email_in_several_accounts(settings: Settings) -> None:
    with https_client(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        group = make_party(client, admin, "group")
        supplier = make_party(client, admin, "supplier")
        email = "treasurer@example.org"
        in_funder = add_human(client, funder.id, "approver", email=email)
        in_group = add_human(client, group.id, "owner", email=email)
        add_human(client, supplier.id, "owner", email=email, password="another long password")

        response = client.post("/v1/sessions", json=sign_in_body(email))
        assert_problem(response, 409, "account_required")
        listed = {e["account_id"] for e in response.json()["errors"]}
        assert listed == {funder.id, group.id}  # only those the password opens
        assert "set-cookie" not in response.headers

        signed = sign_in(client, email, account_id=group.id)
        assert signed.body["member"]["id"] == in_group.person.id
        signed = sign_in(client, email, account_id=funder.id)
        assert signed.body["member"]["id"] == in_funder.person.id
        # the other password opens one account only: no choice to make
        signed = sign_in(client, email, "another long password")
        assert signed.body["account"]["id"] == supplier.id
        # an account the email is not in
        response = client.post(
            "/v1/sessions",
            json=sign_in_body(email, account_id=make_party(client, admin, "manager").id),
        )
        assert_problem(response, 401, "invalid_credentials")


def test_bad_sign_in_bodies_are_422_and_write_nothing(settings: Settings) -> None:
    with https_client(settings) as client:
        for body in (
            {},
            {"email": "a@example.org"},
            {"email": "a@example.org", "password": ""},
            {"email": "a@example.org", "password": "x" * 1025},
            {"email": "a\x00@example.org", "password": "long enough password"},
            {"email": "a@example.org", "password": "long enough password", "extra": 1},
            {"email": 5, "password": "long enough password"},
        ):
            response = client.post("/v1/sessions", json=body)
            assert_problem(response, 422, "validation_error")
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        from voucherledger.people.session_models import SigninFailure

        with factory() as session:
            assert session.execute(select(SigninFailure)).first() is None
            assert session.execute(select(WebSession)).first() is None


def test_an_idempotency_key_on_sign_in_replays_nothing(settings: Settings) -> None:
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "operator")
        headers = {"Idempotency-Key": "same"}
        first = client.post("/v1/sessions", json=sign_in_body(human.email), headers=headers)
        client.cookies.clear()
        second = client.post("/v1/sessions", json=sign_in_body(human.email), headers=headers)
        assert first.status_code == second.status_code == 201
        assert "idempotent-replayed" not in second.headers
        assert first.cookies["vl_session"] != second.cookies["vl_session"]
        assert first.json()["csrf_token"] != second.json()["csrf_token"]


def test_a_key_wins_over_a_cookie_and_junk_cookies_are_401(settings: Settings) -> None:
    with https_client(settings) as client:
        admin = admin_headers(client)
        party = make_party(client, admin, "funder")
        human = add_human(client, party.id, "operator")
        signed = sign_in(client, human.email)
        both = {**signed.reads, **admin}
        assert client.get("/v1/me", headers=both).json()["kind"] == "admin"
        bad_scheme = {**signed.reads, "Authorization": "Basic Zm9vOmJhcg=="}
        assert_problem(client.get("/v1/me", headers=bad_scheme), 401, "unauthenticated")
        for junk in ("", "x", "y" * 500, signed.token + "x"):
            response = client.get("/v1/me", headers={"Cookie": f"vl_session={junk}"})
            assert_problem(response, 401, "unauthenticated")
        # signing out a key is not a thing
        assert_problem(client.delete("/v1/sessions/current", headers=admin), 404, "not_found")


def test_me_shows_the_member_of_a_personal_key(settings: Settings) -> None:
    with https_client(settings) as client:
        party = make_party(client, admin_headers(client), "group")
        human = add_human(client, party.id, "viewer")
        me = client.get("/v1/me", headers=human.person.headers).json()
        assert me["id"] == party.id
        assert me["member"]["id"] == human.person.id
        assert me["member"]["totp_enabled"] is False
        assert me["session"] is None
        assert client.get("/v1/me", headers=party.headers).json()["member"] is None
