"""PATCH corrections of accounts, programmes and vouchers: each changed field is
recorded (who, when, old, new) and listed by ``GET .../changes``, one ``*.updated``
event per PATCH says what it was before; refusals record nothing, and no
correction touches the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.accounts import Party, make_party
from tests.factories.app import client_for
from tests.factories.people import add_member
from tests.factories.programmes import (
    assert_problem,
    create_programme,
    issue,
    session_factory,
    snapshot,
)
from tests.factories.redemptions import Cast, claim_programme, make_cast
from voucherledger.core.auth import parse_key
from voucherledger.core.db import transaction
from voucherledger.core.events import event_object, list_events, sequence_pending
from voucherledger.core.settings import Settings
from voucherledger.programmes import repository as programmes_repo
from voucherledger.vouchers import service as vouchers_service


def key_id(party: Party) -> str:
    parsed = parse_key(party.key)
    assert parsed is not None
    return parsed[0]


def events(client: TestClient, type_: str) -> list[dict[str, Any]]:
    factory = session_factory(client)
    sequence_pending(factory, wait=True)
    with factory() as session:
        return [
            event_object(e)
            for e in list_events(session, readers=None, after_sequence=0, limit=500, types=[type_])
        ]


def change_count(client: TestClient) -> int:
    with session_factory(client)() as session:
        return int(session.execute(text("SELECT count(*) FROM change_records")).scalar_one())


def changes(client: TestClient, headers: dict[str, str], path: str) -> list[dict[str, Any]]:
    response = client.get(f"{path}/changes", headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def stored_meta(client: TestClient, table: str, row_id: str) -> Any:
    with session_factory(client)() as session:
        return session.execute(
            text(f"SELECT metadata FROM {table} WHERE id = :id"),
            {"id": row_id},
        ).scalar_one()


def patch(client: TestClient, headers: dict[str, str], path: str, body: Any) -> httpx.Response:
    response: httpx.Response = client.patch(path, headers=headers, json=body)
    return response


# --- accounts ------------------------------------------------------------------------


def test_a_group_corrects_its_name_and_metadata_the_admin_its_profile(
    settings: Settings,
) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        path = f"/v1/accounts/{c.group.id}"
        before = client.get(path, headers=c.group.headers).json()
        response = patch(
            client, c.group.headers, path, {"name": "Corrected name", "metadata": {"crm": "g-1"}}
        )
        assert response.status_code == 200, response.text
        after = response.json()
        assert after["name"] == "Corrected name"
        assert stored_meta(client, "accounts", c.group.id) in ({"crm": "g-1"}, '{"crm": "g-1"}')
        # Its profile decides the women-led reserve and the reports: the admin's to correct.
        refused = patch(client, c.group.headers, path, {"group": {"women_led": True}})
        assert_problem(refused, 403, "forbidden")
        by_admin = patch(client, c.admin, path, {"group": {"women_led": True}})
        assert by_admin.status_code == 200, by_admin.text
        assert by_admin.json()["group"]["women_led"] is True
        assert by_admin.json()["group"]["group_type"] == before["group"]["group_type"]

        listed = changes(client, c.admin, path)
        assert [(x["field"], x["old_value"], x["new_value"]) for x in listed] == [
            ("metadata", {}, {"crm": "g-1"}),
            ("name", before["name"], "Corrected name"),
            ("group.women_led", False, True),
        ]
        assert [x["changed_by"] for x in listed] == [
            key_id(c.group),
            key_id(c.group),
            key_id_of_admin(client, c),
        ]
        assert all(x["changed_at"] for x in listed)

        first, second = events(client, "account.updated")
        assert first["account_ids"] == second["account_ids"] == [c.group.id]
        assert first["data"]["object"]["name"] == "Corrected name"
        assert first["data"]["previous"] == {"metadata": {}, "name": before["name"]}
        assert second["data"]["previous"] == {"group.women_led": False}

        # The same values again, and an empty body: 200, nothing recorded, no event.
        for body in ({"name": "Corrected name", "metadata": {"crm": "g-1"}}, {}):
            again = patch(client, c.group.headers, path, body)
            assert again.status_code == 200, again.text
            assert again.json()["name"] == "Corrected name"
        assert len(changes(client, c.group.headers, path)) == 3
        assert len(events(client, "account.updated")) == 2


def test_the_admin_corrects_any_account_an_owner_its_own(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        done = patch(client, c.admin, f"/v1/accounts/{c.funder.id}", {"country": "NL"})
        assert done.status_code == 200, done.text
        assert done.json()["country"] == "NL"
        owner = add_member(client, c.funder.id, "owner")
        by_owner = patch(client, owner.headers, f"/v1/accounts/{c.funder.id}", {"name": "F2"})
        assert by_owner.status_code == 200, by_owner.text
        listed = changes(client, c.funder.headers, f"/v1/accounts/{c.funder.id}")
        assert [(x["field"], x["changed_by"]) for x in listed] == [
            ("country", key_id_of_admin(client, c)),
            ("name", owner.id),
        ]


def key_id_of_admin(client: TestClient, c: Cast) -> str:
    parsed = parse_key(c.admin["Authorization"].removeprefix("Bearer "))
    assert parsed is not None
    return parsed[0]


def test_account_corrections_refused_record_nothing(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        path = f"/v1/accounts/{c.group.id}"
        # Another account's (even a funder's): 404, as one it may not correct.
        assert_problem(patch(client, c.funder.headers, path, {"name": "X"}), 404, "not_found")
        assert_problem(patch(client, c.other_group.headers, path, {"name": "X"}), 404, "not_found")
        operator = add_member(client, c.group.id, "operator")
        assert_problem(patch(client, operator.headers, path, {"name": "X"}), 403, "forbidden")
        refused: tuple[dict[str, Any], ...] = (
            {"kind": "supplier"},  # the kind is no description
            {"nickname": "X"},
            {"name": None},
            {"name": ""},
            {"metadata": {"bad key": "x"}},
            {"metadata": {"k": "x" * 501}},
            {"metadata": {f"k{i}": "x" for i in range(21)}},
            {"metadata": None},
            {"country": "XX"},
        )
        for body in refused:
            assert_problem(patch(client, c.group.headers, path, body), 422, "validation_error")
        for body in ({"group": {"women_led": None}}, {"group": {"group_type": "not-a-type"}}):
            assert_problem(patch(client, c.admin, path, body), 422, "validation_error")
        not_a_group = patch(
            client, c.admin, f"/v1/accounts/{c.funder.id}", {"group": {"women_led": True}}
        )
        assert_problem(not_a_group, 422, "validation_error")
        assert change_count(client) == 0
        assert events(client, "account.updated") == []


def test_the_supplier_profile_patch_records_and_emits(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        path = f"/v1/accounts/{c.supplier.id}"
        response = patch(
            client,
            c.supplier.headers,
            f"{path}/supplier-profile",
            {"contact_email": "desk@supplier.example", "payout_bic": "DEUTDEFF"},
        )
        assert response.status_code == 200, response.text
        listed = changes(client, c.supplier.headers, path)
        assert [(x["field"], x["old_value"], x["new_value"]) for x in listed] == [
            ("contact_email", None, "desk@supplier.example"),
            ("payout_bic", None, "DEUTDEFF"),
        ]
        # A funder that accredits nothing sees the account, not its payout values.
        seen = changes(client, c.funder.headers, path)
        assert [(x["field"], x["new_value"]) for x in seen] == [
            ("contact_email", "desk@supplier.example"),
            ("payout_bic", None),
        ]
        (event,) = events(client, "account.updated")
        assert event["account_ids"] == [c.supplier.id]
        assert event["data"]["previous"] == {"contact_email": None, "payout_bic": None}
        # Unchanged values: nothing more.
        same = patch(
            client, c.supplier.headers, f"{path}/supplier-profile", {"payout_bic": "DEUTDEFF"}
        )
        assert same.status_code == 200
        assert change_count(client) == 2


# --- programmes ----------------------------------------------------------------------


def test_the_funder_corrects_a_programmes_name_and_parties(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        programme = claim_programme(client, c)
        path = f"/v1/programmes/{programme['id']}"
        voucher = issue(client, c.manager, programme["id"], c.group.id, 1000)
        new_manager = make_manager(client, c)
        before = snapshot(client, {})
        response = patch(
            client,
            c.funder.headers,
            path,
            {"name": "Renamed", "manager_ids": [new_manager.id], "metadata": {"ref": "p-9"}},
        )
        assert response.status_code == 200, response.text
        out = response.json()
        assert (out["name"], out["manager_ids"], out["auditor_ids"]) == (
            "Renamed",
            [new_manager.id],
            [c.auditor.id],
        )
        assert stored_meta(client, "programmes", programme["id"]) in (
            {"ref": "p-9"},
            '{"ref": "p-9"}',
        )
        # The removed manager no longer sees it; its voucher keeps who issued it.
        assert_problem(client.get(path, headers=c.manager.headers), 404, "not_found")
        assert client.get(path, headers=new_manager.headers).status_code == 200
        got = client.get(f"/v1/vouchers/{voucher['id']}", headers=c.funder.headers).json()
        assert got["created_by"] == voucher["created_by"]

        listed = changes(client, c.auditor.headers, path)
        assert [(x["field"], x["old_value"], x["new_value"]) for x in listed] == [
            ("manager_ids", [c.manager.id], [new_manager.id]),
            ("metadata", {}, {"ref": "p-9"}),
            ("name", programme["name"], "Renamed"),
        ]
        assert {x["changed_by"] for x in listed} == {key_id(c.funder)}
        (event,) = events(client, "programme.updated")
        assert event["programme_id"] == programme["id"]
        assert set(event["account_ids"]) == {
            c.funder.id,
            c.manager.id,
            new_manager.id,
            c.auditor.id,
        }
        assert event["data"]["previous"] == {
            "manager_ids": [c.manager.id],
            "metadata": {},
            "name": programme["name"],
        }
        assert event["data"]["object"]["name"] == "Renamed"
        after = snapshot(client, {})
        assert (after.journal, after.accounts) == (before.journal, before.accounts)


def make_manager(client: TestClient, c: Cast) -> Party:
    return make_party(client, c.admin, "manager")


def test_a_closed_programme_may_still_be_corrected(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        programme = claim_programme(client, c)
        closed = client.post(f"/v1/programmes/{programme['id']}/close", headers=c.funder.headers)
        assert closed.status_code == 200, closed.text
        response = patch(
            client, c.funder.headers, f"/v1/programmes/{programme['id']}", {"auditor_ids": []}
        )
        assert response.status_code == 200, response.text
        assert response.json()["auditor_ids"] == []
        assert response.json()["status"] == "closed"


def test_programme_corrections_refused_record_nothing(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        programme = claim_programme(client, c)
        path = f"/v1/programmes/{programme['id']}"
        assert_problem(patch(client, c.manager.headers, path, {"name": "X"}), 403, "forbidden")
        assert_problem(patch(client, c.auditor.headers, path, {"name": "X"}), 403, "forbidden")
        assert_problem(patch(client, c.other_funder.headers, path, {"name": "X"}), 404, "not_found")
        assert_problem(patch(client, c.group.headers, path, {"name": "X"}), 403, "forbidden")
        for body in (
            {"currency": "USD"},
            {"name": None},
            {"manager_ids": None},
            {"manager_ids": [c.manager.id, c.manager.id]},
            {"manager_ids": [c.auditor.id]},  # not a manager account
            {"manager_ids": ["acc_unknown"]},
            {"auditor_ids": [c.manager.id]},  # also a manager
            {"metadata": {"": "x"}},
        ):
            assert_problem(patch(client, c.funder.headers, path, body), 422, "validation_error")
        assert change_count(client) == 0
        assert events(client, "programme.updated") == []
        assert client.get(path, headers=c.manager.headers).status_code == 200


# --- vouchers ------------------------------------------------------------------------


def test_an_issuer_extends_a_vouchers_expiry_touching_no_ledger_row(
    settings: Settings,
) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        ends = datetime.now(UTC) + timedelta(days=400)
        programme = claim_programme(client, c, ends_at=ends.isoformat())
        voucher = issue(client, c.manager, programme["id"], c.group.id, 1000)
        path = f"/v1/vouchers/{voucher['id']}"
        old = datetime.fromisoformat(voucher["expires_at"])
        later = (old + timedelta(days=30)).replace(microsecond=0)
        before = snapshot(client, {})
        response = patch(
            client,
            c.manager.headers,
            path,
            {"expires_at": later.isoformat(), "metadata": {"case": "7"}},
        )
        assert response.status_code == 200, response.text
        assert datetime.fromisoformat(response.json()["expires_at"]) == later
        assert stored_meta(client, "vouchers", voucher["id"]) in ({"case": "7"}, '{"case": "7"}')
        after = snapshot(client, {})
        assert (after.journal, after.accounts) == (before.journal, before.accounts)

        listed = changes(client, c.group.headers, path)
        assert [x["field"] for x in listed] == ["expires_at", "metadata"]
        assert datetime.fromisoformat(listed[0]["old_value"]) == old
        assert datetime.fromisoformat(listed[0]["new_value"]) == later
        assert listed[0]["changed_by"] == key_id(c.manager)
        assert changes(client, c.auditor.headers, path) == listed
        (event,) = events(client, "voucher.updated")
        assert set(event["account_ids"]) == {c.funder.id, c.manager.id, c.auditor.id, c.group.id}
        assert event["data"]["object"]["code"] is None
        assert datetime.fromisoformat(event["data"]["previous"]["expires_at"]) == old
        assert event["data"]["previous"]["metadata"] == {}
        # The funder may too; the same expiry again is no extension.
        further = (later + timedelta(days=1)).isoformat()
        assert patch(client, c.funder.headers, path, {"expires_at": further}).status_code == 200
        assert_problem(
            patch(client, c.funder.headers, path, {"expires_at": further}),
            422,
            "expiry_not_extended",
        )


def test_voucher_corrections_refused_record_nothing(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        ends = datetime.now(UTC) + timedelta(days=400)
        programme = claim_programme(client, c, ends_at=ends.isoformat())
        voucher = issue(client, c.manager, programme["id"], c.group.id, 1000)
        path = f"/v1/vouchers/{voucher['id']}"
        current = datetime.fromisoformat(voucher["expires_at"])
        later = {"expires_at": (current + timedelta(days=1)).isoformat()}
        before = snapshot(client)
        assert_problem(
            patch(client, c.manager.headers, path, {"expires_at": current.isoformat()}),
            422,
            "expiry_not_extended",
        )
        earlier = (current - timedelta(days=1)).isoformat()
        assert_problem(
            patch(client, c.manager.headers, path, {"expires_at": earlier}),
            422,
            "expiry_not_extended",
        )
        past_end = (ends + timedelta(days=1)).isoformat()
        assert_problem(
            patch(client, c.manager.headers, path, {"expires_at": past_end}),
            422,
            "validation_error",
        )
        for body in (
            {"amount": 5},
            {"expires_at": None},
            {"expires_at": "2030-01-01T00:00:00"},  # no zone
            {"metadata": {"k": 1}},
        ):
            assert_problem(patch(client, c.manager.headers, path, body), 422, "validation_error")
        assert_problem(patch(client, c.auditor.headers, path, later), 403, "forbidden")
        assert_problem(patch(client, c.group.headers, path, later), 403, "forbidden")
        assert_problem(patch(client, c.other_funder.headers, path, later), 404, "not_found")
        assert snapshot(client) == before
        assert change_count(client) == 0
        assert events(client, "voucher.updated") == []

        revoked = client.post(
            f"{path}/revoke", headers=c.manager.headers, json={"reason": "duplicate"}
        )
        assert revoked.status_code == 200, revoked.text
        assert_problem(patch(client, c.manager.headers, path, later), 409, "voucher_revoked")
        assert change_count(client) == 0


def test_changes_are_paginated_oldest_first(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        programme = create_programme(client, c.funder)
        path = f"/v1/programmes/{programme['id']}"
        for n in range(3):
            assert patch(client, c.funder.headers, path, {"name": f"Name {n}"}).status_code == 200
        first = client.get(f"{path}/changes?limit=2", headers=c.funder.headers).json()
        assert [x["new_value"] for x in first["data"]] == ["Name 0", "Name 1"]
        rest = client.get(
            f"{path}/changes?limit=2&cursor={first['next_cursor']}", headers=c.funder.headers
        ).json()
        assert [x["new_value"] for x in rest["data"]] == ["Name 2"]
        assert rest["next_cursor"] is None
        assert_problem(
            client.get(f"{path}/changes", headers=c.other_funder.headers), 404, "not_found"
        )


def test_a_sweep_that_found_a_voucher_due_spares_it_once_its_expiry_is_extended(
    settings: Settings,
) -> None:
    """The sweep lists due vouchers without a lock; an extension committed between the
    list and the voucher's lock must win (it expired the voucher all the same)."""
    with client_for(settings) as client:
        c = make_cast(client)
        ends = datetime.now(UTC) + timedelta(days=400)
        programme = claim_programme(client, c, ends_at=ends.isoformat())
        soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        voucher = issue(client, c.manager, programme["id"], c.group.id, 1000, expires_at=soon)
        sweep_at = datetime.now(UTC) + timedelta(days=2)
        factory = session_factory(client)
        with factory() as session:
            due = vouchers_service.due_to_expire(session, programme["id"], sweep_at)
        assert [v.id for v in due] == [voucher["id"]]
        extended = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        response = patch(
            client, c.manager.headers, f"/v1/vouchers/{voucher['id']}", {"expires_at": extended}
        )
        assert response.status_code == 200, response.text
        with transaction(factory) as session:
            locked = programmes_repo.get(session, programme["id"], for_update=True)
            assert locked is not None
            count, returned = vouchers_service.expire_due(
                session, locked, sweep_at, None, due=due, created_by="system"
            )
        assert (count, returned) == (0, 0)
        after = client.get(f"/v1/vouchers/{voucher['id']}", headers=c.manager.headers).json()
        assert after["status"] == "active"
