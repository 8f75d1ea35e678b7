"""Who may call each sign-in, ``/v1/me`` and security endpoint, and what everyone
else gets: 401 without a key or session, 403 for a caller that may never do it, 404
for another party's account. A refused call writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers
from tests.factories.authz import table_mismatches
from tests.factories.people import Signed, sign_in, sign_in_body
from tests.factories.sessions import Human, add_human, code_at, https_client
from voucherledger.accounts.models import Account, Member
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.settings import Settings
from voucherledger.people.session_models import WebSession

CALLERS = (
    "admin",
    "funder key",
    "funder owner",
    "funder operator",
    "funder viewer",
    "owner session",
    "viewer session",
    "group owner",
    "no key",
)
MEMBERS = (
    "funder owner",
    "funder operator",
    "funder viewer",
    "owner session",
    "viewer session",
    "group owner",
)
SESSIONS = {"owner session": "funder owner", "viewer session": "funder viewer"}
CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@dataclass
class World:
    client: TestClient
    admin: dict[str, str]
    funder: Party
    humans: dict[str, Human]
    sessions: dict[str, Signed] = field(default_factory=dict)

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "no key":
            return {}
        if caller == "admin":
            return self.admin
        if caller == "funder key":
            return self.funder.headers
        if caller in SESSIONS:
            return self.sessions[caller].writes
        return self.humans[caller].person.headers

    def sign_in_again(self) -> str:
        for caller, member in SESSIONS.items():
            self.sessions[caller] = sign_in(self.client, self.humans[member].email)
        return ""

    def known_secret(self) -> str:
        """Every member midway through a TOTP setup with one known secret."""
        factory = self.client.app.state.session_factory  # type: ignore[attr-defined]
        with transaction(factory) as session:
            for member in session.execute(select(Member)).scalars():
                member.totp_secret = SECRET
                member.totp_confirmed_at = None
                member.totp_last_step = None
        return code_at(SECRET, utcnow())


Call = Callable[[World, dict[str, str], str], httpx.Response]
Check = Callable[[World, str, httpx.Response], bool]


@dataclass
class Case:
    call: Call
    success: int
    expected: dict[str, int | None]
    setup: Callable[[World], str] = lambda w: ""
    check: Check | None = None


def table(succeed: tuple[str, ...], not_found: tuple[str, ...] = ()) -> dict[str, int | None]:
    out: dict[str, int | None] = dict.fromkeys(CALLERS, 403)
    out.update(dict.fromkeys(not_found, 404))
    out.update(dict.fromkeys(succeed, None))
    out["no key"] = 401
    return out


def _me_check(w: World, caller: str, r: httpx.Response) -> bool:
    body = r.json()
    member = body["member"]
    if caller in ("admin", "funder key"):
        return member is None and body["session"] is None
    person = w.humans[SESSIONS.get(caller, caller)].person
    return bool(member["id"] == person.id and (body["session"] is not None) == (caller in SESSIONS))


CASES: dict[str, Case] = {
    "POST /v1/sessions": Case(
        lambda w, h, _: w.client.post(
            "/v1/sessions", headers=h, json=sign_in_body(w.humans["funder operator"].email)
        ),
        201,
        dict.fromkeys(CALLERS, None),  # anyone may sign in; a key sent along changes nothing
        check=lambda w, c, r: r.json()["member"]["id"] == w.humans["funder operator"].person.id,
    ),
    "DELETE /v1/sessions/current": Case(
        lambda w, h, _: w.client.delete("/v1/sessions/current", headers=h),
        204,
        {
            **table(tuple(SESSIONS)),
            **dict.fromkeys(set(CALLERS) - set(SESSIONS), 404),
            "no key": 401,
        },
        setup=World.sign_in_again,
    ),
    "GET /v1/me": Case(
        lambda w, h, _: w.client.get("/v1/me", headers=h),
        200,
        table(tuple(c for c in CALLERS if c != "no key")),
        check=_me_check,
    ),
    "POST /v1/me/totp": Case(
        lambda w, h, _: w.client.post("/v1/me/totp", headers=h),
        201,
        table(MEMBERS),
        check=lambda w, c, r: len(r.json()["secret"]) == 32,
    ),
    "POST /v1/me/totp/confirm": Case(
        lambda w, h, code: w.client.post("/v1/me/totp/confirm", headers=h, json={"code": code}),
        200,
        table(MEMBERS),
        setup=World.known_secret,
    ),
    "PATCH /v1/accounts/{id}/security": Case(
        lambda w, h, _: w.client.patch(
            f"/v1/accounts/{w.funder.id}/security", headers=h, json={"require_totp": False}
        ),
        200,
        table(("admin", "funder owner", "owner session"), not_found=("group owner",)),
        check=lambda w, c, r: r.json()["id"] == w.funder.id,
    ),
}


def snapshot(client: TestClient) -> object:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        return (
            [
                tuple(r)
                for r in session.execute(
                    select(Member.id, Member.totp_secret, Member.totp_confirmed_at).order_by(
                        Member.id
                    )
                )
            ],
            [
                tuple(r)
                for r in session.execute(
                    select(Account.id, Account.require_totp).order_by(Account.id)
                )
            ],
            [
                tuple(r)
                for r in session.execute(
                    select(WebSession.id, WebSession.revoked_at).order_by(WebSession.id)
                )
            ],
        )


def build_world(client: TestClient) -> World:
    admin = admin_headers(client)
    funder = make_party(client, admin, "funder")
    group = make_party(client, admin, "group")
    humans = {
        "funder owner": add_human(client, funder.id, "owner"),
        "funder operator": add_human(client, funder.id, "operator"),
        "funder viewer": add_human(client, funder.id, "viewer"),
        "group owner": add_human(client, group.id, "owner"),
    }
    world = World(client, admin, funder, humans)
    world.sign_in_again()
    return world


def test_authorisation_table(settings: Settings) -> None:
    lenient = settings.model_copy(update={"signin_failure_limit": 1000})
    with https_client(lenient) as client:
        paths: dict[str, Any] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
        routes = {
            f"{method.upper()} {path.replace('{account_id}', '{id}')}"
            for path, operations in paths.items()
            for method, operation in operations.items()
            if "sessions" in operation.get("tags", [])
        }
        assert routes == set(CASES)
        world = build_world(client)
        mismatches = table_mismatches(client, world, CASES, CALLERS, CODES, snapshot)
    assert mismatches == [], "\n".join(mismatches)


def test_the_admin_gets_404_for_an_unknown_account(settings: Settings) -> None:
    with https_client(settings) as client:
        admin = admin_headers(client)
        response = client.patch(
            "/v1/accounts/acc_01ARZ3NDEKTSV4RRFFQ69G5FAV/security",
            headers=admin,
            json={"require_totp": True},
        )
        assert response.status_code == 404, response.text
        bad = client.patch(
            "/v1/accounts/acc_01ARZ3NDEKTSV4RRFFQ69G5FAV/security",
            headers=admin,
            json={"require_totp": "yes"},
        )
        assert bad.status_code == 422, bad.text
