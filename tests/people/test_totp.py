"""TOTP: setup, confirmation, sign-in with a code, replay, and an account requiring it."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.people import Signed, add_member, sign_in, sign_in_body
from tests.factories.programmes import assert_problem
from tests.factories.redemptions import Clock
from tests.factories.sessions import Human, add_human, code_at, https_client, session_clock
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings
from voucherledger.people.session_models import SigninFailure
from voucherledger.people.totp import has_confirmed_totp


def _enrol(client: TestClient, signed: Signed, clock: Clock) -> str:
    setup = client.post("/v1/me/totp", headers=signed.writes)
    assert setup.status_code == 201, setup.text
    secret = setup.json()["secret"]
    confirm = client.post(
        "/v1/me/totp/confirm", json={"code": code_at(secret, clock())}, headers=signed.writes
    )
    assert confirm.status_code == 200, confirm.text
    return str(secret)


def _failures(client: TestClient) -> int:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        return len(session.execute(select(SigninFailure.id)).all())


def test_setup_gives_a_secret_an_otpauth_uri_and_a_qr_code(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with https_client(settings) as client, session_clock(monkeypatch) as clock:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "approver", email="Ada@Example.org")
        signed = sign_in(client, human.email)
        setup = client.post("/v1/me/totp", headers=signed.writes)
        assert setup.status_code == 201, setup.text
        body = setup.json()
        uri = urlparse(body["otpauth_uri"])
        assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
        assert parse_qs(uri.query)["secret"] == [body["secret"]]
        assert parse_qs(uri.query)["issuer"] == ["voucherledger"]
        assert body["qr_svg"].startswith("<svg")
        assert len(body["secret"]) == 32  # 160 bits in base32

        # not confirmed yet: sign-in needs no code, and the rule's check says no
        assert sign_in(client, human.email).body["member"]["totp_enabled"] is False
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with factory() as session:
            assert has_confirmed_totp(session, human.person.id) is False

        wrong = client.post("/v1/me/totp/confirm", json={"code": "000000"}, headers=signed.writes)
        if wrong.status_code != 422:  # 1 in a million: 000000 is the code
            pytest.skip("000000 happened to be the current code")
        assert_problem(wrong, 422, "invalid_totp_code")
        good = client.post(
            "/v1/me/totp/confirm",
            json={"code": code_at(body["secret"], clock())},
            headers=signed.writes,
        )
        assert good.status_code == 200, good.text
        assert good.json()["member_id"] == human.person.id
        with factory() as session:
            assert has_confirmed_totp(session, human.person.id) is True
        # a confirmed factor is not replaced behind the member's back
        assert_problem(client.post("/v1/me/totp", headers=signed.writes), 409, "invalid_state")
        again = client.post(
            "/v1/me/totp/confirm",
            json={"code": code_at(body["secret"], clock())},
            headers=signed.writes,
        )
        assert_problem(again, 409, "invalid_state")
        me = client.get("/v1/me", headers=signed.reads).json()
        assert me["member"]["totp_enabled"] is True


def test_sign_in_with_without_wrong_and_replayed_codes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    lenient = settings.model_copy(update={"signin_failure_limit": 50})  # many refusals here
    with https_client(lenient) as client, session_clock(monkeypatch) as clock:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "approver")
        secret = _enrol(client, sign_in(client, human.email), clock)

        # the code used to confirm cannot sign in
        used = code_at(secret, clock())
        response = client.post("/v1/sessions", json=sign_in_body(human.email, totp_code=used))
        assert_problem(response, 401, "invalid_credentials")

        clock.advance(timedelta(seconds=30))
        assert_problem(
            client.post("/v1/sessions", json=sign_in_body(human.email)), 401, "totp_required"
        )
        before = _failures(client)
        wrong = str((int(code_at(secret, clock())) + 1) % 1_000_000).zfill(6)
        response = client.post("/v1/sessions", json=sign_in_body(human.email, totp_code=wrong))
        assert_problem(response, 401, "invalid_credentials")
        assert _failures(client) == before + 1  # counted by the limiter

        code = code_at(secret, clock())
        signed = sign_in(client, human.email, totp_code=code)
        assert signed.body["member"]["totp_enabled"] is True
        # the same code again, within its step: a replay
        response = client.post("/v1/sessions", json=sign_in_body(human.email, totp_code=code))
        assert_problem(response, 401, "invalid_credentials")

        # the previous step's code is accepted (a slow typist) once, if not used yet
        clock.advance(timedelta(seconds=60))
        late = code_at(secret, clock() - timedelta(seconds=30))
        sign_in(client, human.email, totp_code=late)
        # a code two steps old is refused
        clock.advance(timedelta(seconds=90))
        old = code_at(secret, clock() - timedelta(seconds=60))
        if old != code_at(secret, clock()) and old != code_at(
            secret, clock() - timedelta(seconds=30)
        ):
            response = client.post("/v1/sessions", json=sign_in_body(human.email, totp_code=old))
            assert_problem(response, 401, "invalid_credentials")
        # a wrong password with the right code is still wrong, and the code not spent
        code = code_at(secret, clock())
        response = client.post(
            "/v1/sessions", json=sign_in_body(human.email, "wrong password!!", totp_code=code)
        )
        assert_problem(response, 401, "invalid_credentials")
        sign_in(client, human.email, totp_code=code)


def test_an_owner_requires_totp_of_every_member(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with https_client(settings) as client, session_clock(monkeypatch) as clock:
        admin = admin_headers(client)
        party = make_party(client, admin, "funder")
        owner = add_human(client, party.id, "owner")
        officer: Human = add_human(client, party.id, "operator")
        owner_session = sign_in(client, owner.email)
        response = client.patch(
            f"/v1/accounts/{party.id}/security",
            json={"require_totp": True},
            headers=owner_session.writes,
        )
        assert response.status_code == 200, response.text
        assert response.json()["require_totp"] is True
        assert client.get(f"/v1/accounts/{party.id}", headers=party.headers).json()["require_totp"]

        # the officer has no second factor: signed in, but only to set one up
        limited = sign_in(client, officer.email)
        assert_problem(
            client.get("/v1/programmes", headers=limited.reads), 403, "totp_setup_required"
        )
        assert_problem(
            client.get(f"/v1/accounts/{party.id}", headers=limited.reads),
            403,
            "totp_setup_required",
        )
        assert client.get("/v1/me", headers=limited.reads).status_code == 200
        # so is the owner's own session, made before it had one
        assert_problem(
            client.get("/v1/programmes", headers=owner_session.reads), 403, "totp_setup_required"
        )
        secret = _enrol(client, limited, clock)
        # the same session now reaches everything its role allows
        assert client.get("/v1/programmes", headers=limited.reads).status_code == 200
        clock.advance(timedelta(seconds=30))
        full = sign_in(client, officer.email, totp_code=code_at(secret, clock()))
        assert client.get("/v1/programmes", headers=full.reads).status_code == 200
        # a personal key of a member without a factor is limited as its sessions are
        assert_problem(
            client.get("/v1/programmes", headers=owner.person.headers), 403, "totp_setup_required"
        )
        # sign-out stays possible from a limited session
        assert (
            client.delete("/v1/sessions/current", headers=owner_session.writes).status_code == 204
        )
        # turning the rule off frees the sessions at once
        client.patch(
            f"/v1/accounts/{party.id}/security", json={"require_totp": False}, headers=admin
        )
        again = sign_in(client, owner.email)
        assert client.get("/v1/programmes", headers=again.reads).status_code == 200


def test_concurrent_sign_ins_with_one_code_cannot_both_pass(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step is taken by a guarded UPDATE: the second use finds it taken, even if it
    read the member before the first committed."""
    from voucherledger.accounts.models import Member
    from voucherledger.people import totp

    with https_client(settings) as client, session_clock(monkeypatch) as clock:
        party = make_party(client, admin_headers(client), "funder")
        human = add_human(client, party.id, "approver")
        secret = _enrol(client, sign_in(client, human.email), clock)
        clock.advance(timedelta(seconds=30))
        code = code_at(secret, clock())
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with factory() as stale:
            member = stale.get(Member, human.person.id)  # read before the first use
            assert member is not None
            stale.expunge(member)
        sign_in(client, human.email, totp_code=code)
        with transaction(factory) as session:
            assert totp.accept_code(session, member, code) is False


def test_a_personal_key_reaches_only_the_setup_while_its_account_requires_totp(
    settings: Settings,
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        party = make_party(client, admin, "funder")
        without = add_member(client, party.id, "operator")
        enrolled = add_member(client, party.id, "operator", totp=True)
        assert client.get("/v1/programmes", headers=without.headers).status_code == 200
        required = client.patch(
            f"/v1/accounts/{party.id}/security", json={"require_totp": True}, headers=admin
        )
        assert required.status_code == 200, required.text
        assert_problem(
            client.get("/v1/programmes", headers=without.headers), 403, "totp_setup_required"
        )
        assert client.get("/v1/me", headers=without.headers).status_code == 200
        assert client.get("/v1/programmes", headers=enrolled.headers).status_code == 200
        assert client.get("/v1/programmes", headers=party.headers).status_code == 200  # machine
        setup = client.post("/v1/me/totp", headers=without.headers)
        assert setup.status_code == 201, setup.text
        code = pyotp.TOTP(setup.json()["secret"]).now()
        confirmed = client.post("/v1/me/totp/confirm", json={"code": code}, headers=without.headers)
        assert confirmed.status_code == 200, confirmed.text
        assert client.get("/v1/programmes", headers=without.headers).status_code == 200
