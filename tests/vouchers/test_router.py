"""``/v1/vouchers`` over HTTP: listing with filters and cursors, who sees which
vouchers and which codes, one voucher, and its QR image.

One world per backend serves the module; nothing here writes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import BACKENDS
from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers
from tests.factories.programmes import (
    assert_problem,
    client_on,
    funded_programme,
    issue,
    issue_batch,
    list_all,
    voucher_item,
)

SVG = "{http://www.w3.org/2000/svg}"


@dataclass
class World:
    client: TestClient
    funder: Party
    other_funder: Party
    manager: Party  # of "main" only
    auditor: Party  # of "main" only
    groups: dict[str, Party]  # a, b, c
    programmes: dict[str, str]  # main, side (the funder's, without manager or auditor)
    vouchers: list[dict[str, Any]]  # as issued, oldest first, with their final status

    def ids(self, **where: str) -> list[str]:
        """Ids of the issued vouchers matching ``programme_id``/``group_id``/``status``."""
        return [v["id"] for v in self.vouchers if all(v[k] == want for k, want in where.items())]


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with client_on(str(request.param), request, tmp_path_factory.mktemp("vouchers")) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        manager = make_party(client, admin, "manager")
        auditor = make_party(client, admin, "auditor")
        groups = {name: make_party(client, admin, "group", name=name) for name in "abc"}
        main = funded_programme(
            client, funder, 100_000, manager_ids=[manager.id], auditor_ids=[auditor.id]
        )["id"]
        side = funded_programme(client, funder, 100_000)["id"]

        vouchers = issue_batch(
            client,
            manager,
            main,
            [voucher_item(groups[name].id, 100 + i) for i, name in enumerate("aabab" * 2)],
        )
        soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        vouchers.append(issue(client, funder, main, groups["a"].id, 300, expires_at=soon))
        vouchers += issue_batch(
            client, funder, side, [voucher_item(groups[name].id, 200) for name in "acac"]
        )
        vouchers.append(issue(client, funder, side, groups["c"].id, 400, expires_at=soon))
        for voucher in vouchers:
            voucher["status"] = "active"

        for index in (1, 13):  # one of a's in main, one of a's in side
            response = client.post(
                f"/v1/vouchers/{vouchers[index]['id']}/revoke",
                headers=funder.headers,
                json={"reason": "test"},
            )
            assert response.status_code == 200, response.text
            vouchers[index].update(status="revoked", balance=0)
        with pytest.MonkeyPatch.context() as patched:
            later = datetime.now(UTC) + timedelta(days=1)
            patched.setattr("voucherledger.sweep.service.utcnow", lambda: later)
            for programme_id in (main, side):
                swept = client.post(f"/v1/programmes/{programme_id}/sweep", headers=funder.headers)
                assert swept.json()["expired_vouchers"] == 1, swept.text
        for index in (10, 15):
            vouchers[index].update(status="expired", balance=0)

        yield World(
            client=client,
            funder=funder,
            other_funder=make_party(client, admin, "funder"),
            manager=manager,
            auditor=auditor,
            groups=groups,
            programmes={"main": main, "side": side},
            vouchers=vouchers,
        )


def ids_listed(world: World, party: Party, **params: str) -> list[str]:
    return [v["id"] for v in list_all(world.client, party.headers, "/v1/vouchers", **params)]


# --- who sees what -------------------------------------------------------------------


def test_each_caller_lists_what_it_may_see(world: World) -> None:
    main, side = world.programmes["main"], world.programmes["side"]
    a = world.groups["a"]
    assert ids_listed(world, world.funder) == world.ids()  # oldest first
    assert ids_listed(world, world.manager) == world.ids(programme_id=main)
    assert ids_listed(world, world.auditor) == world.ids(programme_id=main)
    assert ids_listed(world, world.other_funder) == []
    for group in world.groups.values():
        assert ids_listed(world, group) == world.ids(group_id=group.id)
    # Filters narrow what the caller may see; they never widen it.
    assert ids_listed(world, world.manager, programme_id=side) == []
    assert ids_listed(world, world.auditor, group_id=world.groups["c"].id) == []
    assert ids_listed(world, a, group_id=world.groups["b"].id) == []
    assert ids_listed(world, a, programme_id=side) == world.ids(programme_id=side, group_id=a.id)
    assert ids_listed(world, world.other_funder, programme_id=main) == []


@pytest.mark.parametrize(
    "where",
    [
        {"programme_id": "main"},
        {"programme_id": "side"},
        {"group_id": "a"},
        {"group_id": "c"},
        {"status": "active"},
        {"status": "revoked"},
        {"status": "expired"},
        {"status": "exhausted"},
        {"programme_id": "main", "group_id": "a"},
        {"programme_id": "side", "status": "revoked"},
        {"programme_id": "main", "group_id": "b", "status": "active"},
        {"programme_id": "main", "group_id": "c"},
    ],
    ids=lambda where: ",".join(f"{k}={v}" for k, v in where.items()),
)
def test_filters(world: World, where: dict[str, str]) -> None:
    params = dict(where)
    if "programme_id" in params:
        params["programme_id"] = world.programmes[params["programme_id"]]
    if "group_id" in params:
        params["group_id"] = world.groups[params["group_id"]].id
    listed = list_all(world.client, world.funder.headers, "/v1/vouchers", **params)
    assert [v["id"] for v in listed] == world.ids(**params)
    for voucher in listed:
        assert all(voucher[k] == v for k, v in params.items())


def test_the_statuses_of_the_world(world: World) -> None:
    # The world is what the filters are checked against: make sure it has each case.
    statuses = [v["status"] for v in world.vouchers]
    assert (statuses.count("active"), statuses.count("revoked"), statuses.count("expired")) == (
        12,
        2,
        2,
    )


@pytest.mark.parametrize(
    "params",
    [
        {"status": "spent"},
        {"status": "ACTIVE"},
        {"programme_id": "p" * 41},
        {"limit": 0},
        {"limit": 501},
        {"cursor": "!!!"},
    ],
    ids=[
        "unknown status",
        "upper-case status",
        "long programme_id",
        "limit 0",
        "limit 501",
        "bad cursor",
    ],
)
def test_bad_list_parameters_are_422(world: World, params: dict[str, Any]) -> None:
    response = world.client.get("/v1/vouchers", headers=world.funder.headers, params=params)
    assert_problem(response, 422, "validation_error")


def test_codes_are_shown_to_the_funder_its_manager_and_the_owning_group_only(
    world: World,
) -> None:
    issued = {v["id"]: v["code"] for v in world.vouchers}
    for party in (world.funder, world.manager, *world.groups.values()):
        listed = list_all(world.client, party.headers, "/v1/vouchers")
        assert listed
        assert {v["id"]: v["code"] for v in listed} == {v["id"]: issued[v["id"]] for v in listed}
    listed = list_all(world.client, world.auditor.headers, "/v1/vouchers")
    assert len(listed) == len(world.ids(programme_id=world.programmes["main"]))
    assert {v["code"] for v in listed} == {None}
    for voucher_id in world.ids(programme_id=world.programmes["main"]):
        one = world.client.get(f"/v1/vouchers/{voucher_id}", headers=world.auditor.headers)
        assert one.status_code == 200
        assert one.json()["code"] is None
        assert one.json()["amount"] > 0  # the auditor sees everything but the code


# --- cursor pagination ---------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 4, 15, 16, 500])
def test_pages_walk_every_voucher_once_in_order(world: World, limit: int) -> None:
    everything = world.ids()
    assert len(everything) == 16
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = world.client.get("/v1/vouchers", headers=world.funder.headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert 1 <= len(page["data"]) <= limit
        seen += [v["id"] for v in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["data"]) == limit
    assert seen == everything
    assert pages == -(-len(everything) // limit)  # no empty page at the end


def test_pages_of_a_filtered_list(world: World) -> None:
    a = world.groups["a"]
    wanted = world.ids(group_id=a.id, status="active")
    first = world.client.get(
        "/v1/vouchers", headers=a.headers, params={"status": "active", "limit": 2}
    ).json()
    assert [v["id"] for v in first["data"]] == wanted[:2]
    rest = list_all(
        world.client, a.headers, "/v1/vouchers", status="active", cursor=first["next_cursor"]
    )
    assert [v["id"] for v in rest] == wanted[2:]


# --- one voucher ---------------------------------------------------------------------


def test_one_voucher_reads_as_it_was_issued(world: World) -> None:
    listed = {v["id"]: v for v in list_all(world.client, world.funder.headers, "/v1/vouchers")}
    for issued in world.vouchers:
        owner = next(g for g in world.groups.values() if g.id == issued["group_id"])
        for reader in (world.funder, owner):
            response = world.client.get(f"/v1/vouchers/{issued['id']}", headers=reader.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body == listed[issued["id"]]
            for key in ("id", "code", "programme_id", "group_id", "currency", "amount", "status"):
                assert body[key] == issued[key], key
            assert body["service_categories"] == issued["service_categories"]
            assert body["held"] == 0
            assert body["balance"] == (issued["amount"] if issued["status"] == "active" else 0)
            assert datetime.fromisoformat(body["expires_at"]) == datetime.fromisoformat(
                issued["expires_at"]
            )


def test_unknown_and_foreign_vouchers_are_404(world: World) -> None:
    side_voucher = world.ids(programme_id=world.programmes["side"])[0]
    b_voucher = world.ids(group_id=world.groups["b"].id)[0]
    for party, voucher_id in (
        (world.funder, "vch_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        (world.funder, "not-an-id"),
        (world.manager, side_voucher),
        (world.auditor, side_voucher),
        (world.other_funder, b_voucher),
        (world.groups["a"], b_voucher),
    ):
        paths = [f"/v1/vouchers/{voucher_id}"]
        if party is not world.auditor:  # the QR image is never for auditors: 403
            paths.append(f"/v1/vouchers/{voucher_id}/qr.svg")
        for path in paths:
            assert_problem(world.client.get(path, headers=party.headers), 404, "not_found")


# --- QR image ------------------------------------------------------------------------


def test_the_qr_image_is_svg_titled_with_the_code(world: World) -> None:
    voucher = world.vouchers[0]
    owner = world.groups["a"]
    assert voucher["group_id"] == owner.id
    for reader in (world.funder, world.manager, owner):
        response = world.client.get(f"/v1/vouchers/{voucher['id']}/qr.svg", headers=reader.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] == "image/svg+xml"
        root = ET.fromstring(response.content)  # noqa: S314 - our own output
        assert root.tag == f"{SVG}svg"
        title = root.find(f"{SVG}title")
        assert title is not None
        assert title.text == voucher["code"]
        assert root.find(f".//{SVG}path") is not None  # the modules are drawn
    # Another voucher, another image.
    other = world.client.get(
        f"/v1/vouchers/{world.vouchers[2]['id']}/qr.svg", headers=world.funder.headers
    )
    assert other.status_code == 200
    assert other.content != response.content
    assert_problem(
        world.client.get(f"/v1/vouchers/{voucher['id']}/qr.svg", headers=world.auditor.headers),
        403,
        "forbidden",
    )
