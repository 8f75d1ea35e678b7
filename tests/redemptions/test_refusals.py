"""Every refusal of a claim, decision, refund, settlement or feedback: the exact status
and ``code``, and nothing written — no journal row, no balance moved, no claim,
settlement, feedback or idempotency record, no voucher or accreditation changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories.app import client_for
from tests.factories.programmes import assert_problem, issue
from tests.factories.redemptions import (
    Cast,
    claim,
    claim_body,
    claim_count,
    claim_programme,
    claim_snapshot,
    decide,
    feedback,
    get_claim,
    get_voucher,
    make_cast,
    mistyped,
    moved_clock,
    post_claim,
    refund,
    settle,
    sweep,
    today,
    unknown_code,
)
from voucherledger.core.db import utcnow
from voucherledger.core.settings import Settings
from voucherledger.redemptions.limiter import FailureLimiter


def refused(
    client: TestClient, call: Callable[[], httpx.Response], status: int, code: str
) -> dict[str, Any]:
    """``call`` is refused with ``status``/``code`` and leaves everything as it was."""
    before = claim_snapshot(client)
    claims = claim_count(client)
    body = assert_problem(call(), status, code)
    assert claim_count(client) == claims
    assert claim_snapshot(client) == before, f"a refused call ({code}) wrote something"
    return body


def setting(client: TestClient, **rules: Any) -> tuple[Cast, str]:
    """The cast and a programme of 1,000,000 in which the supplier is accredited."""
    c = make_cast(client)
    programme = claim_programme(client, c, accredit_for=(c.supplier,), rules=rules)
    return c, str(programme["id"])


# --- the voucher ----------------------------------------------------------------------


def test_expired_revoked_exhausted_and_over_balance(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(settings) as client, moved_clock(monkeypatch) as clock:
        c, pid = setting(client)
        short = issue(
            client,
            c.manager,
            pid,
            c.group.id,
            1_000,
            expires_at=(clock() + timedelta(days=1)).isoformat(),
        )
        revoked = issue(client, c.manager, pid, c.group.id, 1_000)
        small = issue(client, c.manager, pid, c.group.id, 1_000)

        # Revoked: refused whatever the amount.
        made = client.post(
            f"/v1/vouchers/{revoked['id']}/revoke", headers=c.funder.headers, json={"reason": "x"}
        )
        assert made.status_code == 200, made.text
        refused(
            client,
            lambda: post_claim(client, c.supplier, revoked["code"], 1),
            409,
            "voucher_revoked",
        )

        # Over the balance: 409 insufficient_funds, then exhausted once nothing is left.
        refused(
            client,
            lambda: post_claim(client, c.supplier, small["code"], 1_001),
            409,
            "insufficient_funds",
        )
        claim(client, c.supplier, small["code"], 600)
        refused(
            client,
            lambda: post_claim(client, c.supplier, small["code"], 401),
            409,
            "insufficient_funds",
        )
        claim(client, c.supplier, small["code"], 400)
        assert get_voucher(client, c.group, small["id"])["status"] == "exhausted"
        refused(
            client,
            lambda: post_claim(client, c.supplier, small["code"], 1),
            409,
            "voucher_exhausted",
        )

        # Expired: past expires_at, before and after the sweep marks it.
        clock.advance(timedelta(days=2))
        refused(
            client, lambda: post_claim(client, c.supplier, short["code"], 1), 409, "voucher_expired"
        )
        assert sweep(client, c.manager, pid).json()["expired_vouchers"] == 1
        assert get_voucher(client, c.group, short["id"])["status"] == "expired"
        refused(
            client, lambda: post_claim(client, c.supplier, short["code"], 1), 409, "voucher_expired"
        )


# --- who may claim what -----------------------------------------------------------------


def test_accreditation_and_category_refusals(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,), categories=["leadership"])[
            "id"
        ]
        voucher = issue(client, c.manager, pid, c.group.id, 5_000)
        code = voucher["code"]

        # A code that is not a code: caught by its check character, before any lookup.
        body = refused(
            client,
            lambda: post_claim(client, c.supplier, mistyped(code), 100),
            422,
            "validation_error",
        )
        assert [e["loc"] for e in body["errors"]] == [["body", "voucher_code"]]

        # An unknown code and a voucher of a programme the supplier has no accreditation
        # in at all look exactly alike.
        unknown = refused(
            client, lambda: post_claim(client, c.supplier, unknown_code(), 100), 404, "not_found"
        )
        elsewhere = refused(
            client, lambda: post_claim(client, c.other_supplier, code, 100), 404, "not_found"
        )
        assert {k: v for k, v in unknown.items() if k != "request_id"} == {
            k: v for k, v in elsewhere.items() if k != "request_id"
        }

        # Accredited, but not for the category claimed.
        refused(
            client,
            lambda: post_claim(client, c.supplier, code, 100, "fundraising"),
            403,
            "supplier_not_accredited",
        )

        # Accredited for the category, but the voucher does not cover it.
        narrow = issue(client, c.manager, pid, c.group.id, 5_000, service_categories=["governance"])
        made = client.post(
            f"/v1/programmes/{pid}/accreditations",
            headers=c.funder.headers,
            json={"supplier_id": c.supplier.id, "service_categories": ["leadership", "governance"]},
        )
        assert made.status_code == 201, made.text
        refused(
            client,
            lambda: post_claim(client, c.supplier, narrow["code"], 100, "leadership"),
            422,
            "category_not_allowed",
        )
        claim(client, c.supplier, narrow["code"], 100, "governance")

        # Suspended: every claim refused; the claims it made stay as they were.
        suspended = client.delete(
            f"/v1/programmes/{pid}/accreditations/{c.supplier.id}", headers=c.manager.headers
        )
        assert suspended.status_code == 204
        for category in ("leadership", "governance"):
            refused(
                client,
                partial(post_claim, client, c.supplier, code, 100, category),
                403,
                "supplier_not_accredited",
            )


def test_delivery_date_and_body_refusals(settings: Settings) -> None:
    with client_for(settings) as client:
        c, pid = setting(client)
        code = issue(client, c.manager, pid, c.group.id, 5_000)["code"]
        for delivered_on in (today() + timedelta(days=1), today() - timedelta(days=1)):
            body = refused(
                client,
                partial(
                    post_claim, client, c.supplier, code, 100, delivered_on=delivered_on.isoformat()
                ),
                422,
                "validation_error",
            )
            assert [e["loc"] for e in body["errors"]] == [["body", "delivered_on"]]
        bad_amounts: tuple[object, ...] = (0, -5, 10.5, 10.0, "10", None, True)
        for bad in bad_amounts:
            refused(
                client,
                partial(
                    client.post,
                    "/v1/redemptions",
                    headers=c.supplier.headers,
                    json={**claim_body(code, 1), "amount": bad},
                ),
                422,
                "validation_error",
            )
        refused(
            client,
            lambda: post_claim(
                client, c.supplier, code, 1, evidence=[{"kind": "photo", "reference": "x"}]
            ),
            422,
            "validation_error",
        )
        made = claim(client, c.supplier, code, 100, delivered_on=today().isoformat())
        assert made["delivered_on"] == today().isoformat()


# --- roles and other parties ----------------------------------------------------------------


def test_wrong_roles_and_other_parties_claims(settings: Settings) -> None:
    with client_for(settings) as client:
        c, pid = setting(client)
        code = issue(client, c.manager, pid, c.group.id, 5_000)["code"]
        pending = claim(client, c.supplier, code, 1_000)["id"]
        captured = claim(client, c.supplier, code, 1_000)["id"]
        assert decide(client, c.group, captured, "confirm").status_code == 200

        # A wrong role for the endpoint: 403 forbidden.
        for party in (c.group, c.funder, c.manager, c.auditor):
            refused(client, partial(post_claim, client, party, code, 100), 403, "forbidden")
        for party in (c.supplier, c.funder, c.manager):
            refused(client, partial(decide, client, party, pending, "confirm"), 403, "forbidden")
            refused(client, partial(decide, client, party, pending, "reject"), 403, "forbidden")
            refused(client, partial(feedback, client, party, captured), 403, "forbidden")
        for party in (c.group, c.funder, c.manager):
            refused(client, partial(decide, client, party, pending, "cancel"), 403, "forbidden")
        for party in (c.group, c.auditor):
            refused(client, partial(refund, client, party, captured, 1), 403, "forbidden")
        for party in (c.manager, c.auditor, c.supplier, c.group):
            refused(client, partial(settle, client, party, pid, c.supplier.id), 403, "forbidden")

        # Another party's claim: 404, as if it did not exist.
        refused(client, lambda: decide(client, c.other_group, pending, "confirm"), 404, "not_found")
        refused(client, lambda: decide(client, c.other_group, pending, "reject"), 404, "not_found")
        refused(client, lambda: feedback(client, c.other_group, captured), 404, "not_found")
        refused(
            client, lambda: decide(client, c.other_supplier, pending, "cancel"), 404, "not_found"
        )
        refused(client, lambda: refund(client, c.other_supplier, captured, 1), 404, "not_found")
        refused(client, lambda: refund(client, c.other_funder, captured, 1), 404, "not_found")
        refused(
            client, lambda: settle(client, c.other_funder, pid, c.supplier.id), 404, "not_found"
        )
        for party in (c.other_group, c.other_supplier, c.other_funder):
            response = client.get(f"/v1/redemptions/{pending}", headers=party.headers)
            assert_problem(response, 404, "not_found")
        # The claim is still pending, and still the owners' to decide.
        assert get_claim(client, c.group, pending)["status"] == "pending"
        assert decide(client, c.supplier, pending, "cancel").status_code == 200


# --- transitions ---------------------------------------------------------------------------


def test_invalid_transitions(settings: Settings) -> None:
    with client_for(settings) as client:
        c, pid = setting(client)
        code = issue(client, c.manager, pid, c.group.id, 5_000)["code"]
        confirmed = claim(client, c.supplier, code, 1_000)["id"]
        rejected = claim(client, c.supplier, code, 1_000)["id"]
        cancelled = claim(client, c.supplier, code, 1_000)["id"]
        assert decide(client, c.group, confirmed, "confirm").status_code == 200
        assert decide(client, c.group, rejected, "reject").status_code == 200
        assert decide(client, c.supplier, cancelled, "cancel").status_code == 200
        assert get_claim(client, c.group, rejected)["status"] == "voided"

        for redemption_id in (confirmed, rejected, cancelled):
            refused(
                client,
                partial(decide, client, c.group, redemption_id, "confirm"),
                409,
                "invalid_state",
            )
            refused(
                client,
                partial(decide, client, c.group, redemption_id, "reject"),
                409,
                "invalid_state",
            )
            refused(
                client,
                partial(decide, client, c.supplier, redemption_id, "cancel"),
                409,
                "invalid_state",
            )
        # Only captured claims are refunded.
        pending = claim(client, c.supplier, code, 500)["id"]
        for redemption_id in (rejected, cancelled, pending):
            refused(
                client,
                partial(refund, client, c.supplier, redemption_id, 1),
                409,
                "invalid_state",
            )


def test_refund_and_settlement_refusals(settings: Settings) -> None:
    with client_for(settings) as client:
        c, pid = setting(client, requires_group_confirmation=False)
        code = issue(client, c.manager, pid, c.group.id, 5_000)["code"]

        # Nothing captured yet: nothing to settle; a supplier never accredited: 422.
        refused(
            client, lambda: settle(client, c.funder, pid, c.supplier.id), 409, "nothing_to_settle"
        )
        refused(
            client,
            lambda: settle(client, c.funder, pid, c.other_supplier.id),
            422,
            "validation_error",
        )

        made = claim(client, c.supplier, code, 1_000)["id"]
        refused(client, lambda: refund(client, c.supplier, made, 1_001), 409, "insufficient_funds")
        assert refund(client, c.supplier, made, 600).status_code == 201
        refused(client, lambda: refund(client, c.funder, made, 401), 409, "insufficient_funds")
        assert refund(client, c.manager, made, 400).status_code == 201
        refused(client, lambda: refund(client, c.supplier, made, 1), 409, "insufficient_funds")
        # Fully refunded: the payable is 0 again, nothing to settle.
        refused(
            client, lambda: settle(client, c.funder, pid, c.supplier.id), 409, "nothing_to_settle"
        )

        paid_out = claim(client, c.supplier, code, 700)["id"]
        settled = settle(client, c.funder, pid, c.supplier.id)
        assert settled.status_code == 201, settled.text
        assert (settled.json()["amount"], settled.json()["redemption_ids"]) == (700, [paid_out])
        for party in (c.supplier, c.funder, c.manager):
            refused(client, partial(refund, client, party, paid_out, 1), 409, "already_settled")
        refused(
            client, lambda: settle(client, c.funder, pid, c.supplier.id), 409, "nothing_to_settle"
        )
        # The fully refunded claim was not part of the settlement.
        assert get_claim(client, c.supplier, made)["settled"] is False


def test_feedback_refusals(settings: Settings) -> None:
    with client_for(settings) as client:
        c, pid = setting(client)
        code = issue(client, c.manager, pid, c.group.id, 5_000)["code"]
        pending = claim(client, c.supplier, code, 1_000)["id"]
        voided = claim(client, c.supplier, code, 1_000)["id"]
        captured = claim(client, c.supplier, code, 1_000)["id"]
        assert decide(client, c.group, voided, "reject").status_code == 200
        assert decide(client, c.group, captured, "confirm").status_code == 200

        for redemption_id in (pending, voided):
            refused(client, partial(feedback, client, c.group, redemption_id), 409, "invalid_state")
        for rating in (0, 6, 3.5):
            refused(
                client,
                partial(feedback, client, c.group, captured, rating),
                422,
                "validation_error",
            )
        assert feedback(client, c.group, captured, 4).status_code == 201
        refused(client, lambda: feedback(client, c.group, captured, 5), 409, "invalid_state")
        listing = client.get(f"/v1/programmes/{pid}/suppliers", headers=c.funder.headers).json()
        assert [(s["claim_count"], s["feedback_count"], s["average_rating"]) for s in listing] == [
            (1, 1, 4.0)
        ]


# --- rate limiting ----------------------------------------------------------------------------


def test_ten_failed_lookups_block_the_supplier(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier, c.other_supplier))["id"]
        code = issue(client, c.manager, pid, c.group.id, 5_000)["code"]
        elsewhere = claim_programme(client, c)["id"]  # no supplier accredited there
        foreign = issue(client, c.manager, elsewhere, c.group.id, 5_000)["code"]
        limiter: FailureLimiter = client.app.state.code_limiter  # type: ignore[attr-defined]
        assert (limiter.limit, limiter.window) == (10, 60.0)

        # Refusals that are not failed look-ups do not count.
        for _ in range(12):
            refused(
                client,
                lambda: post_claim(client, c.supplier, code, 9_999),
                409,
                "insufficient_funds",
            )
        # Ten failed look-ups: mistyped, unknown, and a voucher of another programme.
        failures = [
            (lambda: post_claim(client, c.supplier, mistyped(code), 1), 422, "validation_error"),
            (lambda: post_claim(client, c.supplier, unknown_code(), 1), 404, "not_found"),
            (lambda: post_claim(client, c.supplier, foreign, 1), 404, "not_found"),
        ]
        for attempt in range(10):
            call, status, error = failures[attempt % len(failures)]
            refused(client, call, status, error)

        # The 11th attempt, and then even a valid claim, is 429 and writes nothing.
        body = refused(
            client, lambda: post_claim(client, c.supplier, unknown_code(), 1), 429, "rate_limited"
        )
        assert body["title"] == "Too many requests"
        response = post_claim(client, c.supplier, code, 1)
        assert response.headers["retry-after"] == "60"
        refused(client, lambda: post_claim(client, c.supplier, code, 1), 429, "rate_limited")

        # Another supplier is not affected; other endpoints of the blocked one still work.
        made = claim(client, c.other_supplier, code, 100)
        assert made["status"] == "pending"
        mine = client.get("/v1/redemptions", headers=c.supplier.headers)
        assert mine.status_code == 200


def test_the_block_lifts_once_the_failures_leave_the_window(settings: Settings) -> None:
    with client_for(settings) as client:
        c, pid = setting(client)
        code = issue(client, c.manager, pid, c.group.id, 5_000)["code"]
        start = utcnow()
        now = [start]
        client.app.state.code_limiter = FailureLimiter(  # type: ignore[attr-defined]
            limit=10, window=60.0, clock=lambda: now[0]
        )
        # One failure at the start, eight 30 s later: nine in the minute, not blocked yet.
        for attempt in range(9):
            refused(
                client, lambda: post_claim(client, c.supplier, unknown_code(), 1), 404, "not_found"
            )
            now[0] = start + timedelta(seconds=30) if attempt == 0 else now[0]
        claim(client, c.supplier, code, 1)
        # The tenth blocks the supplier, the oldest failure dating from the start.
        refused(client, lambda: post_claim(client, c.supplier, unknown_code(), 1), 404, "not_found")
        refused(client, lambda: post_claim(client, c.supplier, code, 1), 429, "rate_limited")
        now[0] = start + timedelta(seconds=59.9)  # the first failure is still inside the minute
        refused(client, lambda: post_claim(client, c.supplier, code, 1), 429, "rate_limited")
        now[0] = start + timedelta(seconds=60.1)  # it has left: nine in the window again
        claim(client, c.supplier, code, 1)
        refused(client, lambda: post_claim(client, c.supplier, unknown_code(), 1), 404, "not_found")
        refused(client, lambda: post_claim(client, c.supplier, code, 1), 429, "rate_limited")
