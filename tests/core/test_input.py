"""Input that must never give a 500: control characters, out-of-range instants,
oversized or non-JSON bodies, and the 405s and 409s the API document promises.

Each refusal is a problem with a stable code, answered before any database call, and
leaves the database as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.app import client_for
from tests.factories.programmes import (
    assert_problem,
    issue,
    snapshot,
    voucher_item,
)
from tests.factories.redemptions import (
    Cast,
    claim,
    claim_body,
    claim_programme,
    claim_snapshot,
    decide,
    make_cast,
)
from voucherledger.core.schemas import forbidden_character
from voucherledger.core.settings import Settings

# Ends of datetime's range whose UTC form is outside it.
OVERFLOWING_INSTANTS = ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59")


@dataclass(frozen=True)
class World:
    client: TestClient
    cast: Cast
    programme_id: str
    voucher_id: str
    code: str
    claim_id: str


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    with client_for(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(client, cast, accredit_for=(cast.supplier,))
        voucher = issue(client, cast.manager, programme["id"], cast.group.id, 50_000)
        made = claim(client, cast.supplier, voucher["code"], 1_000)
        assert decide(client, cast.group, made["id"], "confirm").status_code == 200
        yield World(client, cast, programme["id"], voucher["id"], voucher["code"], made["id"])


def _refused(response: Any, where: str) -> None:
    assert response.status_code == 422, (where, response.status_code, response.text)
    assert_problem(response, 422, "validation_error")


# --- control characters --------------------------------------------------------------


def _body_cases(w: World, bad: str) -> list[tuple[str, str, Any, dict[str, Any]]]:
    """(what, path, headers, body) for every string field of every input body."""
    c = w.cast
    p = f"/v1/programmes/{w.programme_id}"
    r = f"/v1/redemptions/{w.claim_id}"
    group: dict[str, Any] = {"group_type": "hometown_association", "origin_country": "GH"}
    group |= {"residence_country": "GB", "women_led": False}
    return [
        ("name", "/v1/accounts", c.admin, {"kind": "funder", "name": f"Fund{bad}er"}),
        (
            "group",
            "/v1/accounts",
            c.admin,
            {"kind": "group", "name": "G", "group": group} | {"country": f"G{bad}"},
        ),
        (
            "programme name",
            "/v1/programmes",
            c.funder.headers,
            {"name": f"P{bad}", "currency": "EUR", "service_categories": ["leadership"]},
        ),
        (
            "manager id",
            "/v1/programmes",
            c.funder.headers,
            {
                "name": "P",
                "currency": "EUR",
                "service_categories": ["leadership"],
                "manager_ids": [f"acc_{bad}"],
            },
        ),
        (
            "reference",
            f"{p}/deposits",
            c.funder.headers,
            {"amount": 100, "reference": f"grant{bad}1"},
        ),
        (
            "supplier id",
            f"{p}/accreditations",
            c.manager.headers,
            {"supplier_id": f"{c.supplier.id}{bad}", "service_categories": ["leadership"]},
        ),
        ("group id", f"{p}/vouchers", c.manager.headers, voucher_item(f"{c.group.id}{bad}", 10)),
        (
            "batch group id",
            f"{p}/vouchers/batch",
            c.manager.headers,
            {"vouchers": [voucher_item(f"{c.group.id}{bad}", 10)]},
        ),
        (
            "revoke reason",
            f"/v1/vouchers/{w.voucher_id}/revoke",
            c.manager.headers,
            {"reason": f"lost{bad}"},
        ),
        ("voucher code", "/v1/redemptions", c.supplier.headers, claim_body(w.code + bad, 100)),
        (
            "description",
            "/v1/redemptions",
            c.supplier.headers,
            claim_body(w.code, 100, description=f"Training{bad}"),
        ),
        (
            "evidence",
            "/v1/redemptions",
            c.supplier.headers,
            claim_body(w.code, 100, evidence=[{"kind": "other", "reference": f"x{bad}"}]),
        ),
        ("reject reason", f"{r}/reject", c.group.headers, {"reason": f"no{bad}"}),
        ("refund reason", f"{r}/refunds", c.supplier.headers, {"amount": 1, "reason": f"r{bad}"}),
        (
            "outcome",
            f"{r}/feedback",
            c.group.headers,
            {"rating": 5, "outcome": f"good{bad}", "outcome_kind": "process"},
        ),
        (
            "payout ref",
            f"{p}/settlements",
            c.funder.headers,
            {"supplier_id": c.supplier.id, "payout_reference": f"BANK{bad}"},
        ),
        (
            "settled supplier",
            f"{p}/settlements",
            c.funder.headers,
            {"supplier_id": f"{c.supplier.id}{bad}", "payout_reference": "BANK"},
        ),
    ]


@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x1f", "\x7f", "\ufffe", "\uffff"])
def test_a_control_character_in_any_body_string_is_422_and_writes_nothing(
    world: World, bad: str
) -> None:
    before = claim_snapshot(world.client)
    for where, path, headers, body in _body_cases(world, bad):
        _refused(world.client.post(path, headers=headers, json=body), where)
    assert claim_snapshot(world.client) == before


@pytest.mark.parametrize("bad", ["\t", "\n", "\r"])
def test_tab_and_newline_are_refused_in_single_line_fields_only(world: World, bad: str) -> None:
    free_text = {"revoke reason", "description", "reject reason", "refund reason", "outcome"}
    before = claim_snapshot(world.client)
    for where, path, headers, body in _body_cases(world, bad):
        if where not in free_text:
            _refused(world.client.post(path, headers=headers, json=body), where)
    assert claim_snapshot(world.client) == before
    # Free text keeps its line breaks.
    response = world.client.post(
        f"/v1/redemptions/{world.claim_id}/feedback",
        headers=world.cast.group.headers,
        json={"rating": 5, "outcome": "Line one\n\tLine two", "outcome_kind": "process"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["outcome"] == "Line one\n\tLine two"


def test_the_character_rule() -> None:
    assert forbidden_character("plain text, ünïcödé ✓", multiline=False) is None
    assert forbidden_character("a\nb\tc\r\n", multiline=True) is None
    for bad in ("\x00", "\x08", "\x0b", "\x1b", "\x7f", "\ufffe", "\uffff"):
        assert forbidden_character(f"a{bad}", multiline=True) == bad
    for bad in ("\t", "\n", "\r"):
        assert forbidden_character(f"a{bad}", multiline=False) == bad


def test_a_control_character_in_a_path_or_query_is_422(world: World) -> None:
    c, client = world.cast, world.client
    before = snapshot(client)
    gets = [
        (c.funder.headers, "/v1/programmes/prg_%00x"),
        (c.admin, "/v1/accounts/acc%00"),
        (c.funder.headers, "/v1/ledger/accounts/funder%00/balance"),
        (c.funder.headers, "/v1/ledger/transactions/txn_%01"),
        (c.manager.headers, "/v1/vouchers/vch_%0A"),
        (c.funder.headers, "/v1/programmes?cursor=AA"),  # decodes to "\x00"
        (c.admin, "/v1/accounts?cursor=AAE"),  # "\x00\x01"
        (c.manager.headers, "/v1/vouchers?programme_id=prg%00"),
        (c.funder.headers, "/v1/ledger/transactions?account=a%00b"),
        (c.supplier.headers, "/v1/redemptions?voucher_id=%EF%BF%BF"),  # U+FFFF
        (c.funder.headers, "/v1/settlements?supplier_id=x%09y"),
    ]
    for headers, path in gets:
        _refused(client.get(path, headers=headers), path)
    _refused(client.post("/v1/programmes/prg_%00/close", headers=c.funder.headers), "close")
    _refused(client.delete("/v1/keys/key_%00", headers=c.admin), "delete key")
    assert snapshot(client) == before


# --- instants outside datetime's range -------------------------------------------------


@pytest.mark.parametrize("instant", OVERFLOWING_INSTANTS)
def test_an_instant_whose_utc_form_overflows_is_422(world: World, instant: str) -> None:
    c, client = world.cast, world.client
    before = claim_snapshot(client)
    body = {"name": "P", "currency": "EUR", "service_categories": ["leadership"]}
    _refused(
        client.post("/v1/programmes", headers=c.funder.headers, json=body | {"ends_at": instant}),
        "ends_at",
    )
    _refused(
        client.post(
            f"/v1/programmes/{world.programme_id}/vouchers",
            headers=c.manager.headers,
            json=voucher_item(c.group.id, 10, expires_at=instant),
        ),
        "expires_at",
    )
    account = f"programme:{world.programme_id}:unissued"
    for path, params in [
        (f"/v1/ledger/accounts/{account}/balance", {"as_of": instant}),
        ("/v1/ledger/trial-balance", {"programme_id": world.programme_id, "as_of": instant}),
        ("/v1/ledger/transactions", {"since": instant}),
        ("/v1/ledger/transactions", {"until": instant}),
    ]:
        _refused(client.get(path, headers=c.funder.headers, params=params), f"{path} {params}")
    for fmt in ("jsonl", "csv", "iati", "360giving"):
        for name in ("since", "until"):
            response = client.get(
                "/v1/audit/export",
                headers=c.auditor.headers,
                params={"format": fmt, name: instant},
            )
            _refused(response, f"export {fmt} {name}")
    assert claim_snapshot(client) == before


# --- bodies and headers ----------------------------------------------------------------


def test_a_body_past_the_limit_is_413_even_without_a_key(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_body_bytes": 1000})
    with client_for(settings) as client:
        big = json.dumps({"kind": "funder", "name": "x" * 2000})
        response = client.post(
            "/v1/accounts", content=big, headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b" " * 200

        response = client.post(
            "/v1/accounts", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")
        # Within the limit the request goes on to authentication as before.
        small = client.post("/v1/accounts", json={"kind": "funder", "name": "x"})
        assert_problem(small, 401, "unauthenticated")


def test_the_batch_route_has_the_larger_limit(world: World) -> None:
    c, client = world.cast, world.client
    limit = client.app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    # Whitespace is valid JSON: a body past the default limit with two vouchers in it.
    body = json.dumps({"vouchers": [voucher_item(c.group.id, 1)] * 2}) + " " * limit
    assert len(body) > limit
    response = client.post(
        f"/v1/programmes/{world.programme_id}/vouchers",
        headers=c.manager.headers | {"content-type": "application/json"},
        content=json.dumps(voucher_item(c.group.id, 1, pad="x" * limit)),
    )
    assert_problem(response, 413, "payload_too_large")
    response = client.post(
        f"/v1/programmes/{world.programme_id}/vouchers/batch",
        headers=c.manager.headers | {"content-type": "application/json"},
        content=body,
    )
    assert response.status_code == 201, response.text[:300]


def test_a_ten_thousand_voucher_batch_fits_the_batch_limit() -> None:
    item = voucher_item(
        "acc_01JD6X7R2W8Y4C3K9M5P0QXYZT",
        99_999_999,
        service_categories=["leadership", "fundraising", "governance", "digital_skills"],
        expires_at="2030-12-31T23:59:59.999999+00:00",
    )
    body = json.dumps({"vouchers": [item] * 10_000}, indent=2)
    assert len(body) * 2 < Settings().max_batch_body_bytes


def test_headers_past_the_limit_are_431(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_header_bytes": 2000})
    with client_for(settings) as client:
        response = client.get("/v1/me", headers={"x-padding": "p" * 3000})
        assert_problem(response, 431, "headers_too_large")


def test_deeply_nested_json_is_422_json_too_deep(world: World) -> None:
    before = snapshot(world.client)
    deep = '{"kind": "funder", "name": "x", "group": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = world.client.post(
        "/v1/accounts",
        headers=world.cast.admin | {"content-type": "application/json", "idempotency-key": "k1"},
        content=deep,
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["type"] == "json_too_deep"
    assert snapshot(world.client) == before


def test_a_body_that_is_not_json_is_415(world: World) -> None:
    c, client = world.cast, world.client
    before = snapshot(client)
    body = json.dumps({"kind": "funder", "name": "F"})
    for media_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = client.post(
            "/v1/accounts", headers=c.admin | {"content-type": media_type}, content=body
        )
        assert_problem(response, 415, "unsupported_media_type")
    assert snapshot(client) == before
    for media_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post(
            "/v1/accounts", headers=c.admin | {"content-type": media_type}, content=body
        )
        assert response.status_code == 201, (media_type, response.text)
    # A POST without a body (closing, sweeping, a new key) needs no media type.
    response = client.post(f"/v1/accounts/{c.funder.id}/keys", headers=c.admin)
    assert response.status_code == 201, response.text


# --- 405 and the API document --------------------------------------------------------


def test_405_lists_every_method_of_the_path(world: World) -> None:
    c, client = world.cast, world.client
    cases = [
        ("PUT", "/v1/programmes", {"GET", "POST"}),
        ("PATCH", "/v1/accounts", {"GET", "POST"}),
        ("PUT", f"/v1/programmes/{world.programme_id}", {"GET", "PATCH"}),
        ("POST", "/v1/me", {"GET"}),
        ("GET", f"/v1/vouchers/{world.voucher_id}/revoke", {"POST"}),
    ]
    for method, path, allowed in cases:
        response = client.request(method, path, headers=c.admin)
        assert_problem(response, 405, "method_not_allowed")
        listed = {m.strip() for m in response.headers["allow"].split(",")}
        assert listed - {"HEAD"} == allowed, (method, path, listed)


# POSTs anyone may make: no account to keep an Idempotency-Key under.
UNAUTHENTICATED_POSTS = frozenset({"accept_invite", "create_session"})
# A POST that changes nothing takes no Idempotency-Key (core.routing.LookupRoute).
LOOKUP_POSTS = frozenset({"validate_voucher", "check_voucher_batch"})


def test_every_post_documents_idempotency_key_reused(settings: Settings) -> None:
    with client_for(settings) as client:
        document = client.get("/openapi.json").json()
    missing = [
        path
        for path, item in document["paths"].items()
        if "post" in item
        and item["post"]["operationId"] not in UNAUTHENTICATED_POSTS | LOOKUP_POSTS
        and "idempotency_key_reused"
        not in item["post"]["responses"].get("409", {}).get("description", "")
    ]
    assert missing == []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                for status in ("413", "415"):
                    assert status in operation["responses"], (method, path, status)
