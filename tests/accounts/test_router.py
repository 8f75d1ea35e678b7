"""The account and key endpoints of ``openapi/openapi.json``, over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import Party, account_body, group_profile, make_party
from tests.factories.app import admin_headers, bearer, client_for
from voucherledger.core.settings import Settings

PROBLEM_JSON = "application/problem+json"
KINDS = ("admin", "funder", "manager", "group", "supplier", "auditor")


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:voucherledger:problem:{code}"
    assert body["title"]
    assert body["detail"]
    return body


def directory(client: TestClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    """Every account, as the admin sees it (walking all pages)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/v1/accounts", headers=admin, params=params)
        assert response.status_code == 200, response.text
        items.extend(response.json()["data"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


# --- creating accounts --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_admin_creates_an_account_of_each_kind(settings: Settings, kind: str) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        body = account_body(kind, name=f"  The {kind}  ", country="GB")
        response = client.post("/v1/accounts", headers=admin, json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["id"].startswith("acc_")
        assert created["kind"] == kind
        assert created["name"] == f"The {kind}"  # stripped
        assert created["country"] == "GB"
        assert created["created_at"].endswith("Z") or created["created_at"].endswith("+00:00")
        if kind == "group":
            assert created["group"] == group_profile()
        else:
            assert created["group"] is None
        if kind == "supplier":
            assert created["supplier"] == {
                "service_categories": ["leadership", "fundraising"],
                # contact and payout details come later, by PATCH .../supplier-profile
                **dict.fromkeys(
                    (
                        "contact_email",
                        "contact_phone",
                        "payout_iban",
                        "payout_bic",
                        "payout_account_holder",
                        "payout_updated_at",
                        "payout_updated_by",
                    )
                ),
            }
        else:
            assert created["supplier"] is None
        fetched = client.get(f"/v1/accounts/{created['id']}", headers=admin)
        assert fetched.status_code == 200
        assert fetched.json() == created


def test_a_women_led_group_keeps_its_profile(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        profile = group_profile(
            group_type="womens_group", origin_country="SN", residence_country="FR", women_led=True
        )
        response = client.post(
            "/v1/accounts",
            headers=admin,
            json={"kind": "group", "name": "Femmes", "group": profile},
        )
        assert response.status_code == 201, response.text
        assert response.json()["group"] == profile
        assert response.json()["country"] is None


INVALID_BODIES: dict[str, dict[str, Any]] = {
    "unknown kind": {"kind": "superuser", "name": "x"},
    "missing kind": {"name": "x"},
    "missing name": {"kind": "funder"},
    "empty name": {"kind": "funder", "name": ""},
    "blank name": {"kind": "funder", "name": "   "},
    "name too long": {"kind": "funder", "name": "x" * 201},
    "name not a string": {"kind": "funder", "name": 42},
    "lowercase country": account_body("funder", country="gb"),
    "unknown country": account_body("funder", country="XX"),
    "three-letter country": account_body("funder", country="GBR"),
    "unknown group_type": account_body("group", group={"group_type": "book_club"}),
    "lowercase origin_country": account_body("group", group={"origin_country": "gh"}),
    "unknown residence_country": account_body("group", group={"residence_country": "XX"}),
    "women_led as a string": account_body("group", group={"women_led": "yes"}),
    "women_led as an int": account_body("group", group={"women_led": 1}),
    "group profile missing a field": {
        "kind": "group",
        "name": "x",
        "group": {"group_type": "youth_group", "origin_country": "GH", "residence_country": "GB"},
    },
    "group without profile": {"kind": "group", "name": "x"},
    "supplier without profile": {"kind": "supplier", "name": "x"},
    "group profile on a funder": {"kind": "funder", "name": "x", "group": group_profile()},
    "supplier profile on a group": account_body(
        "group", supplier={"service_categories": ["leadership"]}
    ),
    "unknown service category": account_body(
        "supplier", supplier={"service_categories": ["leadership", "astrology"]}
    ),
    "repeated service categories": account_body(
        "supplier", supplier={"service_categories": ["leadership", "leadership"]}
    ),
    "no service categories": account_body("supplier", supplier={"service_categories": []}),
    "unknown top-level field": account_body("funder", is_admin=True),
    "unknown field in group profile": account_body("group", group={"verified": True}),
    "unknown field in supplier profile": account_body(
        "supplier", supplier={"service_categories": ["leadership"], "rate": 5}
    ),
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_account_bodies_are_422_and_write_nothing(
    settings: Settings, body: dict[str, Any]
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        before = directory(client, admin)
        response = client.post("/v1/accounts", headers=admin, json=body)
        problem = assert_problem(response, 422, "validation_error")
        assert isinstance(problem["errors"], list)
        assert problem["errors"], "a 422 names the bad fields"
        for error in problem["errors"]:
            assert set(error) == {"loc", "msg", "type"}
            assert error["loc"][0] == "body"
        assert directory(client, admin) == before


# --- the directory ------------------------------------------------------------------


def test_the_directory_pages_through_every_account_in_creation_order(
    settings: Settings,
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        created = [directory(client, admin)[0]["id"]]  # the admin itself
        for kind in ("funder", "group", "supplier", "group", "manager", "auditor", "supplier"):
            response = client.post("/v1/accounts", headers=admin, json=account_body(kind))
            assert response.status_code == 201
            created.append(response.json()["id"])

        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"limit": 1}
            if cursor is not None:
                params["cursor"] = cursor
            response = client.get("/v1/accounts", headers=admin, params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["data"]) == 1
            seen.append(page["data"][0]["id"])
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages <= len(created), "pagination does not end"
        assert seen == created  # every account once, oldest first

        default = client.get("/v1/accounts", headers=admin).json()
        assert [a["id"] for a in default["data"]] == created
        assert default["next_cursor"] is None

        three = client.get("/v1/accounts", headers=admin, params={"limit": 3}).json()
        assert [a["id"] for a in three["data"]] == created[:3]
        rest = client.get(
            "/v1/accounts", headers=admin, params={"limit": 500, "cursor": three["next_cursor"]}
        ).json()
        assert [a["id"] for a in rest["data"]] == created[3:]
        assert rest["next_cursor"] is None


def test_the_directory_filters_by_kind(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        groups = [make_party(client, admin, "group").id for _ in range(3)]
        suppliers = [make_party(client, admin, "supplier").id]
        make_party(client, admin, "funder")

        def ids(params: dict[str, str | int]) -> list[str]:
            response = client.get("/v1/accounts", headers=admin, params=params)
            assert response.status_code == 200, response.text
            return [a["id"] for a in response.json()["data"]]

        assert ids({"kind": "group"}) == groups
        assert ids({"kind": "supplier"}) == suppliers
        assert ids({"kind": "auditor"}) == []
        first = client.get("/v1/accounts", headers=admin, params={"kind": "group", "limit": 2})
        assert [a["id"] for a in first.json()["data"]] == groups[:2]
        assert ids({"kind": "group", "cursor": first.json()["next_cursor"]}) == groups[2:]


@pytest.mark.parametrize("reader", ["funder", "manager"])
def test_funders_and_managers_see_only_groups_and_suppliers(
    settings: Settings, reader: str
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        me = make_party(client, admin, reader)
        group = make_party(client, admin, "group")
        make_party(client, admin, "funder")
        make_party(client, admin, "manager")
        supplier = make_party(client, admin, "supplier")
        make_party(client, admin, "auditor")

        listed = client.get("/v1/accounts", headers=me.headers)
        assert listed.status_code == 200
        assert [a["id"] for a in listed.json()["data"]] == [group.id, supplier.id]
        only_funders = client.get("/v1/accounts", headers=me.headers, params={"kind": "funder"})
        assert only_funders.status_code == 200
        assert only_funders.json() == {"data": [], "next_cursor": None, "has_more": False}
        only_groups = client.get("/v1/accounts", headers=me.headers, params={"kind": "group"})
        assert [a["id"] for a in only_groups.json()["data"]] == [group.id]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": -1},
        {"limit": "ten"},
        {"cursor": "!!!"},
        {"cursor": "%%%"},
        {"cursor": "x" * 201},
        {"kind": "superuser"},
    ],
    ids=[
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=ten",
        "cursor=!!!",
        "cursor=%%%",
        "cursor too long",
        "unknown kind",
    ],
)
def test_bad_list_parameters_are_422(settings: Settings, params: dict[str, Any]) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        response = client.get("/v1/accounts", headers=admin, params=params)
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"]
        assert problem["errors"][0]["loc"][0] == "query"


def test_limit_bounds_are_inclusive(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        for limit in (1, 500):
            response = client.get("/v1/accounts", headers=admin, params={"limit": limit})
            assert response.status_code == 200, response.text


# --- one account ----------------------------------------------------------------------


def test_every_account_sees_itself_and_me(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        for kind in KINDS:
            party = make_party(client, admin, kind)
            one = client.get(f"/v1/accounts/{party.id}", headers=party.headers)
            assert one.status_code == 200, (kind, one.text)
            me = client.get("/v1/me", headers=party.headers)
            assert me.status_code == 200
            # /v1/me is the account as before, and the person (none for an account key)
            assert me.json() == {**one.json(), "member": None, "session": None}
            assert me.json()["id"] == party.id
            assert me.json()["kind"] == kind


def test_visibility_of_one_account(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        parties = {kind: make_party(client, admin, kind) for kind in KINDS}
        others = {kind: make_party(client, admin, kind) for kind in KINDS}
        visible = {
            "admin": set(KINDS),
            "funder": {"group", "supplier"},
            "manager": {"group", "supplier"},
            "group": set(),
            "supplier": set(),
            "auditor": set(),
        }
        for viewer_kind, viewer in parties.items():
            for target_kind, target in others.items():
                response = client.get(f"/v1/accounts/{target.id}", headers=viewer.headers)
                if target_kind in visible[viewer_kind]:
                    assert response.status_code == 200, (viewer_kind, target_kind)
                    assert response.json()["id"] == target.id
                else:
                    assert_problem(response, 404, "not_found")


def test_unknown_account_is_404(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        response = client.get("/v1/accounts/acc_01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=admin)
        assert_problem(response, 404, "not_found")


# --- keys -----------------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_authenticates(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        group = make_party(client, admin, "group")
        response = client.post(f"/v1/accounts/{group.id}/keys", headers=admin)
        assert response.status_code == 201, response.text
        created = response.json()
        assert set(created) == {"id", "account_id", "key", "created_at", "created_by"}
        assert created["id"].startswith("key_")
        assert created["account_id"] == group.id
        assert created["key"].startswith(f"vl_{created['id']}_")
        assert created["key"] != group.key
        assert client.get("/v1/me", headers=bearer(created["key"])).json()["id"] == group.id
        # The key is not readable anywhere afterwards.
        for path in (f"/v1/accounts/{group.id}", "/v1/me", "/v1/accounts"):
            assert created["key"] not in client.get(path, headers=admin).text


def test_keys_for_an_unknown_account_are_404(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        response = client.post("/v1/accounts/acc_01ARZ3NDEKTSV4RRFFQ69G5FAV/keys", headers=admin)
        assert_problem(response, 404, "not_found")


def test_a_revoked_key_stops_at_once_and_other_keys_keep_working(
    settings: Settings,
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        second = client.post(f"/v1/accounts/{funder.id}/keys", headers=admin).json()
        assert client.get("/v1/me", headers=bearer(second["key"])).status_code == 200

        revoked = client.delete(f"/v1/keys/{second['id']}", headers=admin)
        assert revoked.status_code == 204
        assert revoked.content == b""

        assert_problem(client.get("/v1/me", headers=bearer(second["key"])), 401, "unauthenticated")
        assert client.get("/v1/me", headers=funder.headers).status_code == 200
        # Revoking again changes nothing; an unknown key is 404.
        assert client.delete(f"/v1/keys/{second['id']}", headers=admin).status_code == 204
        assert_problem(client.get("/v1/me", headers=bearer(second["key"])), 401, "unauthenticated")
        assert_problem(
            client.delete("/v1/keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=admin),
            404,
            "not_found",
        )


def test_an_admin_may_revoke_its_own_key(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        other_admin = admin_headers(client, "Second operator")
        key_id = admin["Authorization"].removeprefix("Bearer vl_").rsplit("_", 1)[0]
        assert client.delete(f"/v1/keys/{key_id}", headers=admin).status_code == 204
        assert_problem(client.get("/v1/me", headers=admin), 401, "unauthenticated")
        assert client.get("/v1/me", headers=other_admin).status_code == 200


def test_a_key_with_a_wrong_secret_is_401(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        prefix, secret = funder.key.rsplit("_", 1)
        forged = f"{prefix}_{'0' * len(secret)}"
        assert_problem(client.get("/v1/me", headers=bearer(forged)), 401, "unauthenticated")
        # The right secret under another key id does not work either.
        other = make_party(client, admin, "funder")
        swapped = f"{other.key.rsplit('_', 1)[0]}_{secret}"
        assert_problem(client.get("/v1/me", headers=bearer(swapped)), 401, "unauthenticated")


# --- who may call what ----------------------------------------------------------------

UNAUTHENTICATED = ("no key", "garbage key", "revoked key", "basic auth")
ROLES = (*KINDS, *UNAUTHENTICATED)
UNKNOWN_ACCOUNT = "acc_01ARZ3NDEKTSV4RRFFQ69G5FAV"


@dataclass
class World:
    client: TestClient
    admin: dict[str, str]
    parties: dict[str, Party]
    other: dict[str, Party]  # a second party of each kind, not the caller
    spare_key_id: str
    spare_key: str
    revoked: str

    def headers(self, role: str) -> dict[str, str]:
        if role == "no key":
            return {}
        if role == "garbage key":
            return bearer("garbage")
        if role == "revoked key":
            return bearer(self.revoked)
        if role == "basic auth":
            return {"Authorization": "Basic YWRtaW46YWRtaW4="}
        return self.parties[role].headers


def build_world(client: TestClient) -> World:
    admin = admin_headers(client)
    parties = {kind: make_party(client, admin, kind) for kind in KINDS}
    other = {kind: make_party(client, admin, kind) for kind in KINDS}
    spare = client.post(f"/v1/accounts/{other['supplier'].id}/keys", headers=admin).json()
    revoked = make_party(client, admin, "admin")
    revoked_key_id = revoked.key.removeprefix("vl_").rsplit("_", 1)[0]
    assert client.delete(f"/v1/keys/{revoked_key_id}", headers=admin).status_code == 204
    return World(client, admin, parties, other, spare["id"], spare["key"], revoked.key)


Call = Callable[[World, dict[str, str]], httpx.Response]

# The contract: status for each role; 401/403/404 also name their code.
ONLY_ADMIN = {"admin": None, **{k: 403 for k in KINDS if k != "admin"}}
EVERYONE = dict.fromkeys(KINDS)
NOBODY_BUT_ADMIN_SEES = {"admin": None, **{k: 404 for k in KINDS if k != "admin"}}


@dataclass(frozen=True)
class Case:
    call: Call
    success: int
    expected: dict[str, int | None]  # None: the success status


CASES: dict[str, Case] = {
    "POST /v1/accounts": Case(
        lambda w, h: w.client.post("/v1/accounts", headers=h, json=account_body("funder")),
        201,
        ONLY_ADMIN,
    ),
    "GET /v1/accounts": Case(
        lambda w, h: w.client.get("/v1/accounts", headers=h),
        200,
        {
            "admin": None,
            "funder": None,
            "manager": None,
            "group": 403,
            "supplier": 403,
            "auditor": 403,
        },
    ),
    "GET /v1/accounts?kind=group": Case(
        lambda w, h: w.client.get("/v1/accounts", headers=h, params={"kind": "group"}),
        200,
        {
            "admin": None,
            "funder": None,
            "manager": None,
            "group": 403,
            "supplier": 403,
            "auditor": 403,
        },
    ),
    "GET /v1/accounts/{a group}": Case(
        lambda w, h: w.client.get(f"/v1/accounts/{w.other['group'].id}", headers=h),
        200,
        {
            "admin": None,
            "funder": None,
            "manager": None,
            "group": 404,
            "supplier": 404,
            "auditor": 404,
        },
    ),
    "GET /v1/accounts/{a supplier}": Case(
        lambda w, h: w.client.get(f"/v1/accounts/{w.other['supplier'].id}", headers=h),
        200,
        {
            "admin": None,
            "funder": None,
            "manager": None,
            "group": 404,
            "supplier": 404,
            "auditor": 404,
        },
    ),
    "GET /v1/accounts/{a funder}": Case(
        lambda w, h: w.client.get(f"/v1/accounts/{w.other['funder'].id}", headers=h),
        200,
        NOBODY_BUT_ADMIN_SEES,
    ),
    "GET /v1/accounts/{a manager}": Case(
        lambda w, h: w.client.get(f"/v1/accounts/{w.other['manager'].id}", headers=h),
        200,
        NOBODY_BUT_ADMIN_SEES,
    ),
    "GET /v1/accounts/{an auditor}": Case(
        lambda w, h: w.client.get(f"/v1/accounts/{w.other['auditor'].id}", headers=h),
        200,
        NOBODY_BUT_ADMIN_SEES,
    ),
    "GET /v1/accounts/{an admin}": Case(
        lambda w, h: w.client.get(f"/v1/accounts/{w.other['admin'].id}", headers=h),
        200,
        NOBODY_BUT_ADMIN_SEES,
    ),
    "GET /v1/accounts/{unknown}": Case(
        lambda w, h: w.client.get(f"/v1/accounts/{UNKNOWN_ACCOUNT}", headers=h),
        200,
        dict.fromkeys(KINDS, 404),
    ),
    "POST /v1/accounts/{id}/keys": Case(
        lambda w, h: w.client.post(f"/v1/accounts/{w.other['group'].id}/keys", headers=h),
        201,
        ONLY_ADMIN,
    ),
    "POST /v1/accounts/{unknown}/keys": Case(
        lambda w, h: w.client.post(f"/v1/accounts/{UNKNOWN_ACCOUNT}/keys", headers=h),
        201,
        {**ONLY_ADMIN, "admin": 404},  # the role is checked before the object
    ),
    "DELETE /v1/keys/{key_id}": Case(
        lambda w, h: w.client.delete(f"/v1/keys/{w.spare_key_id}", headers=h),
        204,
        NOBODY_BUT_ADMIN_SEES,  # another party's key, to anyone but the admin
    ),
    "GET /v1/me": Case(lambda w, h: w.client.get("/v1/me", headers=h), 200, EVERYONE),
}

CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}


@pytest.mark.parametrize("endpoint", CASES.keys())
def test_authorisation_table(settings: Settings, endpoint: str) -> None:
    case = CASES[endpoint]
    expected = {**case.expected, **dict.fromkeys(UNAUTHENTICATED, 401)}
    assert set(expected) == set(ROLES)
    with client_for(settings) as client:
        world = build_world(client)
        before = directory(client, world.admin)
        mismatches = []
        # The admin (whose call may revoke the spare key) goes last.
        for role in sorted(ROLES, key=lambda role: role == "admin"):
            if role == "admin":
                # Nothing the others tried had an effect.
                assert directory(client, world.admin) == before
                assert client.get("/v1/me", headers=bearer(world.spare_key)).status_code == 200
            want = expected[role] or case.success
            response = case.call(world, world.headers(role))
            got_code = None
            if response.status_code >= 400:
                assert response.headers["content-type"] == PROBLEM_JSON, (role, response.text)
                got_code = response.json()["code"]
            want_code = CODES.get(want)
            if (response.status_code, got_code) != (want, want_code):
                mismatches.append(
                    f"{role}: want {want} {want_code}, got {response.status_code} {got_code}"
                )
        assert not mismatches, f"{endpoint}:\n" + "\n".join(mismatches)
