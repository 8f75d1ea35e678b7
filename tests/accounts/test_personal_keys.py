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


def test_the_keys_list_shows_every_key_of_the_account_and_no_secret(settings: Settings) -> None:
    """GET /v1/accounts/{id}/keys: the account's own keys and its members' personal
    keys, revoked ones marked, in creation order, pages of ``limit``; nothing of the
    secrets, and nothing of another account's keys."""
    with client_for(settings) as client:
        admin = admin_headers(client)
        group = make_party(client, admin, "group")
        other = make_party(client, admin, "group")
        owner = add_member(client, group.id, "owner")
        spare = client.post(f"/v1/accounts/{group.id}/keys", headers=admin).json()
        assert client.delete(f"/v1/keys/{spare['id']}", headers=admin).status_code == 204

        listed = client.get(f"/v1/accounts/{group.id}/keys", headers=owner.headers)
        assert listed.status_code == 200, listed.text
        keys = listed.json()["data"]
        own_id = group.key.removeprefix("vl_").rsplit("_", 1)[0]
        owner_key_id = owner.key.removeprefix("vl_").rsplit("_", 1)[0]
        assert [k["id"] for k in keys] == sorted([own_id, owner_key_id, spare["id"]])
        by_id = {k["id"]: k for k in keys}
        assert set(by_id[own_id]) == {
            "id",
            "account_id",
            "member_id",
            "created_at",
            "created_by",
            "revoked_at",
            "revoked_by",
        }
        assert by_id[own_id]["member_id"] is None
        assert by_id[owner_key_id]["member_id"] == owner.id
        assert by_id[own_id]["revoked_at"] is None
        assert by_id[spare["id"]]["revoked_at"] is not None
        assert by_id[spare["id"]]["revoked_by"] == admin_key_id(admin)
        for secret in (group.key, owner.key, spare["key"], other.key):
            assert secret.rsplit("_", 1)[1] not in listed.text
        # Pages: one key at a time, then the rest.
        first = client.get(f"/v1/accounts/{group.id}/keys", headers=admin, params={"limit": 1})
        assert len(first.json()["data"]) == 1
        cursor = first.json()["next_cursor"]
        rest = client.get(
            f"/v1/accounts/{group.id}/keys", headers=admin, params={"cursor": cursor}
        ).json()["data"]
        assert [k["id"] for k in first.json()["data"] + rest] == [k["id"] for k in keys]


def admin_key_id(admin: dict[str, str]) -> str:
    return admin["Authorization"].removeprefix("Bearer vl_").rsplit("_", 1)[0]
