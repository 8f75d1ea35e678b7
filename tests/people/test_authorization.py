"""Who may call each member endpoint, and what everyone else gets.

The account under test is a group with an owner, an approver, an operator and a
viewer (each with a personal key) and its own account key. The other callers: the
admin, the owner of another group, a funder and a manager (account keys; they see
groups in the directory, so an account-scoped refusal is 403 for them, not 404), and
a caller with no key. A member id of another account is 404, exactly as an unknown
one; a member of the account who is not an owner gets 403. A refused call writes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories.accounts import Party, account_body, make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.authz import table_mismatches
from tests.factories.people import PASSWORD, Person, add_member, invite, new_email
from voucherledger.accounts.models import Account, ApiKey, Member
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings

CALLERS = (
    "admin",
    "owner",
    "approver",
    "operator",
    "viewer",
    "account key",
    "other owner",
    "funder",
    "manager",
    "no key",
)
MEMBERS = ("owner", "approver", "operator", "viewer")
UNKNOWN_ACCOUNT = "acc_01ARZ3NDEKTSV4RRFFQ69G5FAV"
UNKNOWN_MEMBER = "mem_01ARZ3NDEKTSV4RRFFQ69G5FAV"
CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}


@dataclass
class World:
    client: TestClient
    admin: dict[str, str]
    group: Party
    people: dict[str, Person]
    other_owner: Person
    funder: Party
    manager: Party
    subject: str  # an operator of the group that no caller is
    made: list[str] = field(default_factory=list)

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "no key":
            return {}
        if caller == "admin":
            return self.admin
        if caller == "account key":
            return self.group.headers
        if caller == "other owner":
            return self.other_owner.headers
        if caller in ("funder", "manager"):
            return getattr(self, caller).headers  # type: ignore[no-any-return]
        return self.people[caller].headers

    def invited(self) -> str:
        return str(invite(self.client, self.admin, self.group.id, "viewer")["id"])

    def token(self) -> str:
        return str(invite(self.client, self.admin, self.group.id, "viewer")["invite_token"])

    def untaken_group(self) -> str:
        """A group the funder created and nobody has taken up."""
        response = self.client.post(
            "/v1/accounts", headers=self.funder.headers, json=account_body("group")
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def build_world(client: TestClient) -> World:
    admin = admin_headers(client)
    group = make_party(client, admin, "group")
    people = {role: add_member(client, group.id, role) for role in MEMBERS}  # type: ignore[arg-type]
    other = make_party(client, admin, "group")
    other_owner = add_member(client, other.id, "owner")
    subject = add_member(client, group.id, "operator")
    return World(
        client,
        admin,
        group,
        people,
        other_owner,
        make_party(client, admin, "funder"),
        make_party(client, admin, "manager"),
        subject.id,
    )


def snapshot(client: TestClient) -> object:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with transaction(factory) as session:
        members = session.execute(
            select(
                Member.id, Member.name, Member.role, Member.status, Member.invite_token_hash
            ).order_by(Member.id)
        ).all()
        keys = session.execute(select(func.count()).select_from(ApiKey)).scalar_one()
        accounts = session.execute(select(func.count()).select_from(Account)).scalar_one()
    return (tuple(tuple(m) for m in members), keys, accounts)


Call = Callable[[World, dict[str, str], str], httpx.Response]
Check = Callable[[World, str, httpx.Response], bool]


@dataclass(frozen=True)
class Case:
    call: Call
    success: int
    expected: dict[str, int | None]  # None: ``success``
    setup: Callable[[World], str] = lambda w: ""
    check: Check | None = None


def table(
    succeed: tuple[str, ...],
    not_found: tuple[str, ...] = (),
    otherwise: int = 403,
) -> dict[str, int | None]:
    expected: dict[str, int | None] = dict.fromkeys(CALLERS, otherwise)
    expected.update(dict.fromkeys(not_found, 404))
    expected.update(dict.fromkeys(succeed, None))
    expected["no key"] = 401
    return expected


MANAGERS = ("admin", "owner")
OUTSIDERS = ("other owner", "funder", "manager")  # members of other accounts


def member_body(role: str = "viewer") -> dict[str, Any]:
    return {"email": new_email(), "name": "A newcomer", "role": role}


CASES: dict[str, Case] = {
    "POST /v1/accounts/{id}/members": Case(
        lambda w, h, _: w.client.post(
            f"/v1/accounts/{w.group.id}/members", headers=h, json=member_body()
        ),
        201,
        # The other group's owner cannot see this group at all; funders and managers
        # can, but it is taken up (it has members).
        table(MANAGERS, ("other owner",)),
        check=lambda w, c, r: r.json()["invite_token"] is not None,
    ),
    "POST /v1/accounts/{untaken group}/members": Case(
        lambda w, h, account_id: w.client.post(
            f"/v1/accounts/{account_id}/members", headers=h, json=member_body("owner")
        ),
        201,
        # Onboarding, by the funder that created the group (not the manager). The
        # group's own people do not see another group: 404; the viewer is refused
        # before anything is looked up.
        table(
            ("admin", "funder"),
            ("owner", "approver", "operator", "account key", "other owner"),
        ),
        setup=World.untaken_group,
    ),
    "POST /v1/accounts/{unknown}/members": Case(
        lambda w, h, _: w.client.post(
            f"/v1/accounts/{UNKNOWN_ACCOUNT}/members", headers=h, json=member_body()
        ),
        201,
        table((), tuple(c for c in CALLERS if c != "viewer")),
    ),
    "GET /v1/accounts/{id}/members": Case(
        lambda w, h, _: w.client.get(f"/v1/accounts/{w.group.id}/members", headers=h),
        200,
        table(MANAGERS, ("other owner",)),
        check=lambda w, c, r: {m["account_id"] for m in r.json()["data"]} == {w.group.id},
    ),
    "GET /v1/accounts/{unknown}/members": Case(
        lambda w, h, _: w.client.get(f"/v1/accounts/{UNKNOWN_ACCOUNT}/members", headers=h),
        200,
        table((), tuple(c for c in CALLERS if c != "no key")),
    ),
    "GET /v1/accounts/{id}/keys": Case(
        lambda w, h, _: w.client.get(f"/v1/accounts/{w.group.id}/keys", headers=h),
        200,
        table(MANAGERS, ("other owner",)),
        check=lambda w, c, r: (
            {k["account_id"] for k in r.json()["data"]} == {w.group.id}
            and "secret" not in r.text
            and w.group.key not in r.text
        ),
    ),
    "GET /v1/accounts/{unknown}/keys": Case(
        lambda w, h, _: w.client.get(f"/v1/accounts/{UNKNOWN_ACCOUNT}/keys", headers=h),
        200,
        table((), tuple(c for c in CALLERS if c != "no key")),
    ),
    "GET /v1/members/{id}": Case(
        lambda w, h, _: w.client.get(f"/v1/members/{w.subject}", headers=h),
        200,
        table(MANAGERS, OUTSIDERS),
        check=lambda w, c, r: r.json()["id"] == w.subject and "password_hash" not in r.text,
    ),
    "GET /v1/members/{self}": Case(
        lambda w, h, _: w.client.get(f"/v1/members/{w.people['operator'].id}", headers=h),
        200,
        table((*MANAGERS, "operator"), OUTSIDERS),
    ),
    "GET /v1/members/{unknown}": Case(
        lambda w, h, _: w.client.get(f"/v1/members/{UNKNOWN_MEMBER}", headers=h),
        200,
        table((), tuple(c for c in CALLERS if c != "no key")),
    ),
    "PATCH /v1/members/{id}": Case(
        lambda w, h, _: w.client.patch(
            f"/v1/members/{w.subject}", headers=h, json={"name": "Renamed"}
        ),
        200,
        table(MANAGERS, OUTSIDERS),
        check=lambda w, c, r: r.json()["name"] == "Renamed",
    ),
    "PATCH /v1/members/{unknown}": Case(
        lambda w, h, _: w.client.patch(
            f"/v1/members/{UNKNOWN_MEMBER}", headers=h, json={"name": "Renamed"}
        ),
        200,
        table((), tuple(c for c in CALLERS if c != "viewer")),
    ),
    "POST /v1/members/{id}/invite": Case(
        lambda w, h, member_id: w.client.post(f"/v1/members/{member_id}/invite", headers=h),
        200,
        table(MANAGERS, OUTSIDERS),
        setup=World.invited,
        check=lambda w, c, r: r.json()["invite_token"].startswith("vlinv_"),
    ),
    "POST /v1/members/{id}/keys": Case(
        lambda w, h, _: w.client.post(f"/v1/members/{w.subject}/keys", headers=h),
        201,
        # Nobody makes a key for another person, not even its owners or the admin.
        table((), OUTSIDERS),
    ),
    "POST /v1/members/{self}/keys": Case(
        lambda w, h, _: w.client.post(f"/v1/members/{w.people['operator'].id}/keys", headers=h),
        201,
        table(("operator",), OUTSIDERS),
        check=lambda w, c, r: r.json()["member_id"] == w.people["operator"].id,
    ),
    "POST /v1/members/{unknown}/keys": Case(
        lambda w, h, _: w.client.post(f"/v1/members/{UNKNOWN_MEMBER}/keys", headers=h),
        201,
        table((), CALLERS),
    ),
    "POST /v1/invites/accept": Case(
        lambda w, h, token: w.client.post(
            "/v1/invites/accept", headers=h, json={"token": token, "password": PASSWORD}
        ),
        200,
        # No key needed; a key sent along changes nothing.
        dict.fromkeys(CALLERS),
        setup=World.token,
        check=lambda w, c, r: r.json()["status"] == "active",
    ),
    "POST /v1/accounts (a group)": Case(
        lambda w, h, _: w.client.post("/v1/accounts", headers=h, json=account_body("group")),
        201,
        table(("admin", "funder", "manager")),
    ),
    "POST /v1/accounts (a supplier)": Case(
        lambda w, h, _: w.client.post("/v1/accounts", headers=h, json=account_body("supplier")),
        201,
        table(("admin", "funder", "manager")),
    ),
    "POST /v1/accounts (a funder)": Case(
        lambda w, h, _: w.client.post("/v1/accounts", headers=h, json=account_body("funder")),
        201,
        table(("admin",)),
    ),
}


def member_routes(client: TestClient) -> set[str]:
    paths: dict[str, dict[str, Any]] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {
        f"{method.upper()} {path.replace('{account_id}', '{id}').replace('{member_id}', '{id}')}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "members" in operation.get("tags", [])
    }


def covered() -> set[str]:
    out = set()
    for endpoint in CASES:
        for marker in ("{untaken group}", "{unknown}", "{self}"):
            endpoint = endpoint.replace(marker, "{id}")
        method, path = endpoint.split(" ")[:2]
        if path != "/v1/accounts":
            out.add(f"{method} {path}")
    return out


def test_authorisation_table(settings: Settings) -> None:
    with client_for(settings) as client:
        assert member_routes(client) == covered()
        world = build_world(client)
        mismatches = table_mismatches(client, world, CASES, CALLERS, CODES, snapshot)
    assert mismatches == [], "\n".join(mismatches)
