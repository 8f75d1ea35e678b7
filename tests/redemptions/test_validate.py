"""``POST /v1/vouchers/validate``: what a claim could take, before claiming. The same
look-up, refusals and failed-code count as a claim; it writes nothing else (and takes
no Idempotency-Key: there is nothing to run twice)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.accounts import Party
from tests.factories.app import client_for
from tests.factories.programmes import assert_problem, issue, session_factory
from tests.factories.redemptions import (
    claim,
    claim_programme,
    claim_snapshot,
    make_cast,
    mistyped,
    moved_clock,
    post_claim,
    unknown_code,
)
from voucherledger.core.settings import Settings


def validate(client: TestClient, supplier: Party, code: str, **headers: str) -> httpx.Response:
    response: httpx.Response = client.post(
        "/v1/vouchers/validate",
        headers={**supplier.headers, **headers},
        json={"voucher_code": code},
    )
    return response


def failures(client: TestClient) -> int:
    with session_factory(client)() as session:
        return int(session.execute(text("SELECT count(*) FROM code_failures")).scalar_one())


def refused(
    client: TestClient, call: Callable[[], httpx.Response], status: int, code: str
) -> dict[str, Any]:
    before = claim_snapshot(client)
    body = assert_problem(call(), status, code)
    assert claim_snapshot(client) == before
    return body


def test_it_shows_what_a_claim_could_take(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        programme = claim_programme(
            client, c, accredit_for=(c.supplier,), categories=["leadership", "governance"]
        )
        voucher = issue(
            client,
            c.manager,
            programme["id"],
            c.group.id,
            10_000,
            service_categories=["fundraising", "governance", "leadership"],
        )
        claim(client, c.supplier, voucher["code"], 2_500)  # held: not claimable any more
        before = claim_snapshot(client)
        # The code as a clerk types it: lower case, no dashes.
        typed = voucher["code"].replace("-", "").lower()
        response = validate(client, c.supplier, typed, **{"Idempotency-Key": "ignored"})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "voucher_id": voucher["id"],
            "programme_id": programme["id"],
            "programme_name": programme["name"],
            "currency": "EUR",
            "claimable_balance": 7_500,
            # In the voucher's order, only those the accreditation covers.
            "categories": ["governance", "leadership"],
            "expires_at": voucher["expires_at"],
        }
        assert claim_snapshot(client) == before
        assert failures(client) == 0


def test_refusals_are_those_of_a_claim(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with client_for(settings) as client, moved_clock(monkeypatch) as clock:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,), categories=["leadership"])[
            "id"
        ]
        elsewhere = claim_programme(client, c)["id"]  # the supplier has no accreditation
        foreign = issue(client, c.manager, elsewhere, c.group.id, 1_000)
        revoked = issue(client, c.manager, pid, c.group.id, 1_000)
        client.post(
            f"/v1/vouchers/{revoked['id']}/revoke", headers=c.funder.headers, json={"reason": "x"}
        )
        spent = issue(client, c.manager, pid, c.group.id, 1_000)
        claim(client, c.supplier, spent["code"], 1_000)
        short = issue(
            client,
            c.manager,
            pid,
            c.group.id,
            1_000,
            expires_at=(clock() + timedelta(days=1)).isoformat(),
        )
        other_categories = issue(
            client, c.manager, pid, c.group.id, 1_000, service_categories=["governance"]
        )

        # Failed look-ups, each counted: mistyped, unknown, another programme's (which
        # answers exactly as an unknown code does).
        unknown = refused(
            client, lambda: validate(client, c.supplier, unknown_code()), 404, "not_found"
        )
        theirs = refused(
            client, lambda: validate(client, c.supplier, foreign["code"]), 404, "not_found"
        )
        assert theirs["detail"] == unknown["detail"]
        refused(
            client,
            lambda: validate(client, c.supplier, mistyped(spent["code"])),
            422,
            "validation_error",
        )
        assert failures(client) == 3

        # The voucher's state and the accreditation: refused as a claim is, not counted.
        refused(
            client, lambda: validate(client, c.supplier, revoked["code"]), 409, "voucher_revoked"
        )
        refused(
            client, lambda: validate(client, c.supplier, spent["code"]), 409, "voucher_exhausted"
        )
        refused(
            client,
            lambda: validate(client, c.supplier, other_categories["code"]),
            403,
            "supplier_not_accredited",
        )
        clock.advance(timedelta(days=2))
        refused(client, lambda: validate(client, c.supplier, short["code"]), 409, "voucher_expired")
        assert failures(client) == 3

        suspended = client.delete(
            f"/v1/programmes/{pid}/accreditations/{c.supplier.id}", headers=c.manager.headers
        )
        assert suspended.status_code == 204
        live = issue(client, c.manager, pid, c.group.id, 1_000)
        refused(
            client,
            lambda: validate(client, c.supplier, live["code"]),
            403,
            "supplier_not_accredited",
        )

        # Suppliers only.
        for party in (c.group, c.funder):
            assert_problem(validate(client, party, live["code"]), 403, "forbidden")


def test_failed_validations_and_claims_share_one_limit(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        code = issue(client, c.manager, pid, c.group.id, 5_000)["code"]
        for _ in range(5):
            assert_problem(validate(client, c.supplier, unknown_code()), 404, "not_found")
            assert_problem(post_claim(client, c.supplier, unknown_code(), 1), 404, "not_found")
        # The 11th look-up in the minute, validation or claim, is refused.
        blocked = refused(client, lambda: validate(client, c.supplier, code), 429, "rate_limited")
        assert blocked["title"] == "Too many requests"
        assert validate(client, c.supplier, code).headers["retry-after"] == "60"
        assert_problem(post_claim(client, c.supplier, code, 1), 429, "rate_limited")
        assert validate(client, c.other_supplier, code).status_code == 404  # not accredited
