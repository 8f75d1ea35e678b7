"""A member's personal key acts as that person: viewers only read, and a disabled
member's key stops working with the next request."""

from __future__ import annotations

from sqlalchemy import update

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.people import add_member
from voucherledger.accounts.models import Member
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings


def test_a_viewer_reads_but_cannot_write(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        viewer = add_member(client, funder.id, "viewer")
        operator = add_member(client, funder.id, "operator")
        body = {"name": "P", "currency": "EUR", "service_categories": ["leadership"]}
        assert client.get("/v1/programmes", headers=viewer.headers).status_code == 200
        refused = client.post("/v1/programmes", headers=viewer.headers, json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden"
        assert client.get("/v1/programmes", headers=viewer.headers).json()["data"] == []
        made = client.post("/v1/programmes", headers=operator.headers, json=body)
        assert made.status_code == 201, made.text


def test_a_disabled_members_key_stops_at_once(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        officer = add_member(client, funder.id, "operator")
        assert client.get("/v1/programmes", headers=officer.headers).status_code == 200
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        with transaction(factory) as session:
            session.execute(update(Member).where(Member.id == officer.id).values(status="disabled"))
        refused = client.get("/v1/programmes", headers=officer.headers)
        assert refused.status_code == 401, refused.text
        assert client.get("/v1/programmes", headers=funder.headers).status_code == 200


def test_a_colleagues_idempotency_key_does_not_replay_the_first_persons_answer(
    settings: Settings,
) -> None:
    """Keys are the account's: a viewer sending the officer's key and body is refused
    (409), not handed the officer's 201, and the officer's own retry still replays."""
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        officer = add_member(client, funder.id, "operator")
        viewer = add_member(client, funder.id, "viewer")
        body = {"name": "P", "currency": "EUR", "service_categories": ["leadership"]}
        key = {"Idempotency-Key": "programme-1"}
        made = client.post("/v1/programmes", headers={**officer.headers, **key}, json=body)
        assert made.status_code == 201, made.text
        again = client.post("/v1/programmes", headers={**officer.headers, **key}, json=body)
        assert again.json()["id"] == made.json()["id"]
        refused = client.post("/v1/programmes", headers={**viewer.headers, **key}, json=body)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "idempotency_key_reused"
        by_machine = client.post("/v1/programmes", headers={**funder.headers, **key}, json=body)
        assert by_machine.json()["code"] == "idempotency_key_reused"
