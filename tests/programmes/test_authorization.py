"""Who may call each programme and voucher endpoint, and what everyone else gets.

A wrong role for an endpoint is 403 ``forbidden``; a programme (or voucher) the
caller is not a party of is 404 ``not_found``, exactly as an unknown one. The
callers are the parties of one programme (its funder, manager, auditor and a
group holding one of its vouchers), the same roles in another programme, a
supplier, the operator and a caller with no key. A refused call writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.authz import table_mismatches
from tests.factories.programmes import (
    accredit,
    funded_programme,
    issue,
    programme_body,
    snapshot,
    voucher_item,
)
from voucherledger.core.settings import Settings

CALLERS = (
    "admin",
    "funder",
    "other funder",
    "manager",
    "other manager",
    "auditor",
    "other auditor",
    "group",
    "other group",
    "supplier",
    "no key",
)
UNKNOWN_PROGRAMME = "prg_01ARZ3NDEKTSV4RRFFQ69G5FAV"
UNKNOWN_VOUCHER = "vch_01ARZ3NDEKTSV4RRFFQ69G5FAV"
CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}


@dataclass
class World:
    client: TestClient
    admin: dict[str, str]
    parties: dict[str, Party]
    programme_id: str  # the funder's, with the manager and the auditor; "group" holds a voucher
    voucher_id: str  # the group's voucher in it
    supplier_id: str  # accredited in it

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "no key":
            return {}
        if caller == "admin":
            return self.admin
        return self.parties[caller].headers

    def fresh_voucher(self) -> str:
        voucher = issue(
            self.client, self.parties["funder"], self.programme_id, self.parties["group"].id, 100
        )
        return str(voucher["id"])

    def fresh_programme(self) -> str:
        programme = funded_programme(
            self.client,
            self.parties["funder"],
            1_000,
            manager_ids=[self.parties["manager"].id],
            auditor_ids=[self.parties["auditor"].id],
        )
        return str(programme["id"])

    def reaccredit(self) -> str:
        accredit(
            self.client, self.parties["funder"], self.programme_id, self.supplier_id, ["leadership"]
        )
        return self.supplier_id


def build_world(client: TestClient) -> World:
    """Two programmes, each with its funder, manager, auditor, a group holding one of
    its vouchers and the supplier accredited; the callers' own is the first."""
    admin = admin_headers(client)
    parties = {
        caller: make_party(client, admin, caller.removeprefix("other "))
        for caller in CALLERS
        if caller not in ("admin", "no key")
    }
    made: list[tuple[str, str]] = []
    for prefix in ("", "other "):
        funder = parties[f"{prefix}funder"]
        programme = funded_programme(
            client,
            funder,
            1_000_000,
            manager_ids=[parties[f"{prefix}manager"].id],
            auditor_ids=[parties[f"{prefix}auditor"].id],
        )
        voucher = issue(client, funder, programme["id"], parties[f"{prefix}group"].id, 500)
        accredit(client, funder, programme["id"], parties["supplier"].id, ["leadership"])
        made.append((programme["id"], voucher["id"]))
    (programme_id, voucher_id), _ = made
    return World(client, admin, parties, programme_id, voucher_id, parties["supplier"].id)


# --- the table ---------------------------------------------------------------------

Call = Callable[[World, dict[str, str], str], httpx.Response]
Check = Callable[[World, str, httpx.Response], bool]


@dataclass(frozen=True)
class Case:
    call: Call
    success: int
    expected: dict[str, int | None]  # None: ``success``
    setup: Callable[[World], str] = lambda w: ""  # a target made afresh for each caller
    check: Check | None = None  # what a successful call must show this caller


def allowed(
    succeed: Iterable[str], not_found: Iterable[str] = (), otherwise: int = 403
) -> dict[str, int | None]:
    """``succeed`` get the success status, ``not_found`` 404, the others ``otherwise``
    (the role may never use the endpoint); without a key, 401."""
    table: dict[str, int | None] = dict.fromkeys(CALLERS, otherwise)
    table.update(dict.fromkeys(not_found, 404))
    table.update(dict.fromkeys(succeed, None))
    table["no key"] = 401
    return table


PARTIES = ("funder", "manager", "auditor")
OTHER_PARTIES = ("other funder", "other manager", "other auditor")
ISSUERS = ("funder", "manager")
OTHER_ISSUERS = ("other funder", "other manager")
READERS = (*PARTIES, *OTHER_PARTIES, "group", "other group")
SEES_CODES = ("funder", "manager", "group")


def lists_programme(w: World, caller: str, r: httpx.Response) -> bool:
    ids = [p["id"] for p in r.json()["data"]]
    return (w.programme_id in ids) == (caller in PARTIES)


def lists_voucher(w: World, caller: str, r: httpx.Response) -> bool:
    codes = {v["id"]: v["code"] for v in r.json()["data"]}
    if caller not in (*PARTIES, "group"):
        return w.voucher_id not in codes
    return w.voucher_id in codes and (codes[w.voucher_id] is not None) == (caller in SEES_CODES)


def shows_voucher(w: World, caller: str, r: httpx.Response) -> bool:
    body = r.json()
    return body["id"] == w.voucher_id and (body["code"] is not None) == (caller in SEES_CODES)


def is_svg(w: World, caller: str, r: httpx.Response) -> bool:
    return r.headers["content-type"].startswith("image/svg+xml") and "<svg" in r.text


def programme_path(w: World) -> str:
    return f"/v1/programmes/{w.programme_id}"


CASES: dict[str, Case] = {
    "POST /v1/programmes": Case(
        lambda w, h, _: w.client.post("/v1/programmes", headers=h, json=programme_body()),
        201,
        allowed(("funder", "other funder")),
    ),
    "GET /v1/programmes": Case(
        lambda w, h, _: w.client.get("/v1/programmes", headers=h),
        200,
        allowed((*PARTIES, *OTHER_PARTIES)),
        check=lists_programme,
    ),
    "GET /v1/programmes/{id}": Case(
        lambda w, h, _: w.client.get(programme_path(w), headers=h),
        200,
        allowed(PARTIES, OTHER_PARTIES),
        check=lambda w, c, r: r.json()["id"] == w.programme_id,
    ),
    "GET /v1/programmes/{unknown}": Case(
        lambda w, h, _: w.client.get(f"/v1/programmes/{UNKNOWN_PROGRAMME}", headers=h),
        200,
        allowed((), (*PARTIES, *OTHER_PARTIES)),
    ),
    "POST /v1/programmes/{id}/deposits": Case(
        lambda w, h, _: w.client.post(
            f"{programme_path(w)}/deposits", headers=h, json={"amount": 100, "reference": "top-up"}
        ),
        201,
        # A manager or auditor may never deposit: 403 even in its own programme.
        allowed(("funder",), ("other funder",)),
    ),
    "POST /v1/programmes/{unknown}/deposits": Case(
        lambda w, h, _: w.client.post(
            f"/v1/programmes/{UNKNOWN_PROGRAMME}/deposits",
            headers=h,
            json={"amount": 100, "reference": "top-up"},
        ),
        201,
        allowed((), ("funder", "other funder")),
    ),
    "POST /v1/programmes/{id}/accreditations": Case(
        lambda w, h, _: w.client.post(
            f"{programme_path(w)}/accreditations",
            headers=h,
            json={"supplier_id": w.supplier_id, "service_categories": ["fundraising"]},
        ),
        201,
        allowed(ISSUERS, OTHER_ISSUERS),
        setup=World.reaccredit,
    ),
    "DELETE /v1/programmes/{id}/accreditations/{supplier_id}": Case(
        lambda w, h, supplier_id: w.client.delete(
            f"{programme_path(w)}/accreditations/{supplier_id}", headers=h
        ),
        204,
        allowed(ISSUERS, OTHER_ISSUERS),
        setup=World.reaccredit,
    ),
    "GET /v1/programmes/{id}/suppliers": Case(
        lambda w, h, _: w.client.get(f"{programme_path(w)}/suppliers", headers=h),
        200,
        # Open to its parties and to groups holding its vouchers; to everyone else
        # the programme does not exist.
        allowed((*PARTIES, "group"), CALLERS),
        check=lambda w, c, r: [s["supplier_id"] for s in r.json()] == [w.supplier_id],
    ),
    "POST /v1/programmes/{id}/close": Case(
        lambda w, h, programme_id: w.client.post(f"/v1/programmes/{programme_id}/close", headers=h),
        200,
        allowed(("funder",), ("other funder",)),
        setup=World.fresh_programme,
        check=lambda w, c, r: r.json()["status"] == "closed",
    ),
    "POST /v1/programmes/{id}/sweep": Case(
        lambda w, h, _: w.client.post(f"{programme_path(w)}/sweep", headers=h),
        200,
        allowed(ISSUERS, OTHER_ISSUERS),
    ),
    "POST /v1/programmes/{id}/vouchers": Case(
        lambda w, h, _: w.client.post(
            f"{programme_path(w)}/vouchers",
            headers=h,
            json=voucher_item(w.parties["group"].id, 100),
        ),
        201,
        allowed(ISSUERS, OTHER_ISSUERS),
    ),
    "POST /v1/programmes/{id}/vouchers/batch": Case(
        lambda w, h, _: w.client.post(
            f"{programme_path(w)}/vouchers/batch",
            headers=h,
            json={"vouchers": [voucher_item(w.parties["other group"].id, 100)]},
        ),
        201,
        allowed(ISSUERS, OTHER_ISSUERS),
    ),
    "POST /v1/programmes/{id}/vouchers/batch/check": Case(
        lambda w, h, _: w.client.post(
            f"{programme_path(w)}/vouchers/batch/check",
            headers=h,
            json={"vouchers": [voucher_item(w.parties["other group"].id, 100)]},
        ),
        200,
        allowed(ISSUERS, OTHER_ISSUERS),
        check=lambda w, c, r: r.json()["valid"] is True,
    ),
    "GET /v1/vouchers": Case(
        lambda w, h, _: w.client.get("/v1/vouchers", headers=h, params={"limit": 500}),
        200,
        allowed(READERS),
        check=lists_voucher,
    ),
    "GET /v1/vouchers?programme_id=": Case(
        lambda w, h, _: w.client.get(
            "/v1/vouchers", headers=h, params={"programme_id": w.programme_id, "limit": 500}
        ),
        200,
        allowed(READERS),
        check=lists_voucher,
    ),
    "GET /v1/vouchers/{id}": Case(
        lambda w, h, _: w.client.get(f"/v1/vouchers/{w.voucher_id}", headers=h),
        200,
        allowed((*PARTIES, "group"), (*OTHER_PARTIES, "other group")),
        check=shows_voucher,
    ),
    "GET /v1/vouchers/{unknown}": Case(
        lambda w, h, _: w.client.get(f"/v1/vouchers/{UNKNOWN_VOUCHER}", headers=h),
        200,
        allowed((), READERS),
    ),
    "GET /v1/vouchers/{id}/qr.svg": Case(
        lambda w, h, _: w.client.get(f"/v1/vouchers/{w.voucher_id}/qr.svg", headers=h),
        200,
        # Auditors never see codes: the endpoint is not for them at all.
        allowed(SEES_CODES, ("other funder", "other manager", "other group")),
        check=is_svg,
    ),
    "GET /v1/vouchers/{id}/statement": Case(
        lambda w, h, _: w.client.get(f"/v1/vouchers/{w.voucher_id}/statement", headers=h),
        200,
        allowed((*PARTIES, "group"), (*OTHER_PARTIES, "other group")),
        check=lambda w, c, r: r.json()["voucher_id"] == w.voucher_id,
    ),
    "POST /v1/vouchers/validate": Case(
        lambda w, h, _: w.client.post(
            "/v1/vouchers/validate",
            headers=h,
            json={
                "voucher_code": w.client.get(
                    f"/v1/vouchers/{w.voucher_id}", headers=w.parties["funder"].headers
                ).json()["code"]
            },
        ),
        200,
        allowed(("supplier",)),
        check=lambda w, c, r: r.json()["programme_id"] == w.programme_id,
    ),
    "POST /v1/vouchers/{id}/revoke": Case(
        lambda w, h, voucher_id: w.client.post(
            f"/v1/vouchers/{voucher_id}/revoke", headers=h, json={"reason": "test"}
        ),
        200,
        allowed(ISSUERS, OTHER_ISSUERS),
        setup=World.fresh_voucher,
        check=lambda w, c, r: r.json()["status"] == "revoked",
    ),
    # Issue 13: corrections and their records.
    "PATCH /v1/programmes/{id}": Case(
        lambda w, h, _: w.client.patch(programme_path(w), headers=h, json={"name": "Renamed"}),
        200,
        allowed(("funder",), ("other funder",)),
        check=lambda w, c, r: r.json()["name"] == "Renamed",
    ),
    "GET /v1/programmes/{id}/changes": Case(
        lambda w, h, _: w.client.get(f"{programme_path(w)}/changes", headers=h),
        200,
        allowed(PARTIES, OTHER_PARTIES),
    ),
    "PATCH /v1/vouchers/{id}": Case(
        lambda w, h, _: w.client.patch(
            f"/v1/vouchers/{w.voucher_id}", headers=h, json={"metadata": {"note": "x"}}
        ),
        200,
        allowed(ISSUERS, OTHER_ISSUERS),
        check=lambda w, c, r: r.json()["id"] == w.voucher_id,
    ),
    "GET /v1/vouchers/{id}/changes": Case(
        lambda w, h, _: w.client.get(f"/v1/vouchers/{w.voucher_id}/changes", headers=h),
        200,
        allowed((*PARTIES, "group"), (*OTHER_PARTIES, "other group")),
    ),
}


def routes_of_this_issue(client: TestClient) -> set[str]:
    """``METHOD /path`` of the operations of the programme and voucher routers (later
    issues add their own, such as settlements and reports), ids written ``{id}``."""
    paths: dict[str, dict[str, Any]] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {
        f"{method.upper()} {path.replace('{programme_id}', '{id}').replace('{voucher_id}', '{id}')}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if {"programmes", "vouchers"} & set(operation.get("tags", []))
        and not path.endswith("/report")
    }


def test_authorisation_table(settings: Settings) -> None:
    with client_for(settings) as client:
        covered = {e.split("?")[0].replace("{unknown}", "{id}") for e in CASES}
        assert routes_of_this_issue(client) == covered
        world = build_world(client)
        mismatches = table_mismatches(client, world, CASES, CALLERS, CODES, snapshot)
    assert mismatches == [], "\n".join(mismatches)
