"""Two-person approval of settlements, told as stories through the API.

In a ``two_person`` programme the funder's officer proposes a payout: the claims it
covers are marked, nothing moves in the ledger. A second person — an approver or
owner of the funder with a confirmed second factor, not the proposer — approves it
and only then is the ``settle`` transaction posted, naming both. A rejection frees
the claims for the next proposal. Every refusal writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from tests.factories.app import client_for
from tests.factories.ledger import journal_counts, ledger_violations
from tests.factories.programmes import assert_problem, balances, issue, session_factory
from tests.factories.redemptions import (
    claim_programme,
    claim_snapshot,
    get_claim,
    make_cast,
    refund,
    settle,
)
from tests.factories.settlements import (
    ApprovalWorld,
    add_funders,
    approval_world,
    approve,
    get_settlement,
    propose,
    reject,
)
from voucherledger.core.settings import Settings


def journal(world: ApprovalWorld) -> dict[str, int]:
    with session_factory(world.client)() as session:
        return journal_counts(session)


def sound(world: ApprovalWorld) -> None:
    with session_factory(world.client)() as session:
        assert ledger_violations(session) == []


def settle_metadata(world: ApprovalWorld, transaction_id: str) -> dict[str, Any]:
    with session_factory(world.client)() as session:
        row = session.execute(
            text("SELECT kind, metadata FROM ledger_transactions WHERE id = :id"),
            {"id": transaction_id},
        ).one()
    assert row[0] == "settle"
    meta = row[1]
    found: dict[str, Any] = json.loads(meta) if isinstance(meta, str) else meta
    return found


def proposed(world: ApprovalWorld, who: Any = None) -> dict[str, Any]:
    response = propose(
        world.client, who or world.people.officer, world.programme_id, world.cast.supplier.id
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "proposed"
    return body


def test_single_approval_settles_at_once_as_before(settings: Settings) -> None:
    with client_for(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(client, cast, 10_000, accredit_for=(cast.supplier,))
        assert programme["rules"]["settlement_approval"] == "single"
        code = issue(client, cast.manager, programme["id"], cast.group.id, 1_000)["code"]
        world = ApprovalWorld(
            client, cast, add_funders(client, cast.funder.id), programme["id"], code
        )
        redemption_id = world.captured(300)
        response = settle(client, cast.funder, programme["id"], cast.supplier.id)
        assert response.status_code == 201, response.text
        body = response.json()
        key_id = cast.funder.key.removeprefix("vl_").rpartition("_")[0]
        assert body["status"] == "settled"
        assert body["amount"] == 300
        assert body["redemption_ids"] == [redemption_id]
        assert body["proposed_by"] == body["approved_by"] == body["created_by"] == key_id
        assert body["approved_at"] == body["proposed_at"]
        meta = settle_metadata(world, body["transaction_id"])
        assert (meta["proposed_by"], meta["approved_by"]) == (key_id, key_id)
        assert get_claim(client, cast.supplier, redemption_id)["settled"] is True
        assert balances(client, cast.funder, programme["id"])["settled"] == 300
        sound(world)


def test_the_ledger_moves_only_on_approval(settings: Settings) -> None:
    with client_for(settings) as client:
        world = approval_world(client)
        w, people = world, world.people
        first, second = w.captured(250), w.captured(150)
        before_journal = journal(w)
        before = balances(client, w.cast.funder, w.programme_id)
        body = proposed(w)
        assert body["amount"] == 400
        assert body["redemption_ids"] == sorted([first, second])
        assert body["transaction_id"] is None
        assert body["proposed_by"] == body["created_by"] == people.officer.id
        assert body["approved_by"] is None
        assert journal(w) == before_journal
        assert balances(client, w.cast.funder, w.programme_id) == before
        assert get_claim(client, w.cast.supplier, first)["settled"] is False
        report = client.get(
            f"/v1/programmes/{w.programme_id}/report", headers=w.cast.funder.headers
        ).json()
        assert report["totals"]["settled"] == 0

        approved = approve(client, people.approver, body["id"])
        assert approved.status_code == 200, approved.text
        done = approved.json()
        assert done["status"] == "settled"
        assert done["approved_by"] == people.approver.id
        assert done["proposed_by"] == people.officer.id
        assert done["transaction_id"] is not None
        assert journal(w)["ledger_transactions"] == before_journal["ledger_transactions"] + 1
        after = balances(client, w.cast.funder, w.programme_id)
        assert after["payable"] == before["payable"] - 400
        assert after["settled"] == before["settled"] + 400
        meta = settle_metadata(w, done["transaction_id"])
        assert meta["settlement_id"] == body["id"]
        assert (meta["proposed_by"], meta["approved_by"]) == (people.officer.id, people.approver.id)
        assert get_claim(client, w.cast.supplier, first)["settled"] is True
        report = client.get(
            f"/v1/programmes/{w.programme_id}/report", headers=w.cast.funder.headers
        ).json()
        assert report["totals"]["settled"] == 400
        # The supplier and the auditor see it, as in the list.
        for reader in (w.cast.supplier, w.cast.auditor):
            assert get_settlement(client, reader, body["id"]) == done
        sound(w)


def test_the_proposer_cannot_approve_a_second_approver_can(settings: Settings) -> None:
    with client_for(settings) as client:
        w = approval_world(client)
        w.captured()
        body = proposed(w, w.people.approver)
        before = claim_snapshot(client)
        assert_problem(
            approve(client, w.people.approver, body["id"]), 403, "second_person_required"
        )
        assert claim_snapshot(client) == before
        response = approve(client, w.people.second_approver, body["id"])
        assert response.status_code == 200, response.text
        assert response.json()["approved_by"] == w.people.second_approver.id
        sound(w)


def test_an_account_key_may_propose_but_never_approve(settings: Settings) -> None:
    with client_for(settings) as client:
        w = approval_world(client)
        w.captured()
        body = proposed(w, w.cast.funder)
        before = claim_snapshot(client)
        assert_problem(approve(client, w.cast.funder, body["id"]), 403, "second_person_required")
        assert claim_snapshot(client) == before
        response = approve(client, w.people.owner, body["id"])
        assert response.status_code == 200, response.text
        assert response.json()["approved_by"] == w.people.owner.id


def test_operators_viewers_and_approvers_without_totp_are_refused(settings: Settings) -> None:
    with client_for(settings) as client:
        w = approval_world(client)
        w.captured()
        assert_problem(
            propose(client, w.people.viewer, w.programme_id, w.cast.supplier.id), 403, "forbidden"
        )
        body = proposed(w)
        before = claim_snapshot(client)
        assert_problem(approve(client, w.people.officer, body["id"]), 403, "forbidden")
        assert_problem(approve(client, w.people.viewer, body["id"]), 403, "forbidden")
        assert_problem(approve(client, w.people.untrusted, body["id"]), 403, "totp_setup_required")
        assert_problem(reject(client, w.people.officer, body["id"]), 403, "forbidden")
        assert_problem(reject(client, w.people.viewer, body["id"]), 403, "forbidden")
        assert claim_snapshot(client) == before
        assert get_settlement(client, w.people.viewer, body["id"])["status"] == "proposed"


def test_a_proposed_settlements_claims_cannot_be_refunded(settings: Settings) -> None:
    with client_for(settings) as client:
        w = approval_world(client)
        redemption_id = w.captured(500)
        body = proposed(w)
        before = claim_snapshot(client)
        refused = refund(client, w.cast.supplier, redemption_id, 100)
        assert_problem(refused, 409, "settlement_pending")
        assert claim_snapshot(client) == before
        # Once rejected, the claim is free: it can be refunded, and is proposed anew.
        assert reject(client, w.people.approver, body["id"]).status_code == 200
        assert refund(client, w.cast.supplier, redemption_id, 100).status_code == 201
        again = proposed(w)
        assert (again["amount"], again["redemption_ids"]) == (400, [redemption_id])
        assert approve(client, w.people.approver, again["id"]).status_code == 200
        assert_problem(refund(client, w.cast.supplier, redemption_id, 1), 409, "already_settled")
        sound(w)


def test_rejection_frees_the_claims_and_keeps_what_it_covered(settings: Settings) -> None:
    with client_for(settings) as client:
        w = approval_world(client)
        claims = sorted([w.captured(100), w.captured(200)])
        body = proposed(w)
        before_journal = journal(w)
        rejected = reject(client, w.people.approver, body["id"], "the bank details are wrong")
        assert rejected.status_code == 200, rejected.text
        out = rejected.json()
        assert out["status"] == "rejected"
        assert out["rejected_by"] == w.people.approver.id
        assert out["rejection_reason"] == "the bank details are wrong"
        assert out["redemption_ids"] == claims
        assert out["transaction_id"] is None
        assert journal(w) == before_journal
        assert get_settlement(client, w.cast.supplier, body["id"]) == out
        # Neither approved nor rejected again.
        assert_problem(approve(client, w.people.second_approver, body["id"]), 409, "invalid_state")
        assert_problem(reject(client, w.people.second_approver, body["id"]), 409, "invalid_state")
        listed = client.get(
            "/v1/settlements", headers=w.cast.funder.headers, params={"status": "rejected"}
        ).json()["data"]
        assert [s["id"] for s in listed] == [body["id"]]
        again = proposed(w)
        assert again["id"] != body["id"]
        assert again["redemption_ids"] == claims
        assert again["amount"] == 300
        assert get_settlement(client, w.cast.funder, body["id"])["redemption_ids"] == claims
        sound(w)


def test_the_proposer_may_withdraw_and_an_account_key_may_reject(settings: Settings) -> None:
    with client_for(settings) as client:
        w = approval_world(client)
        w.captured()
        mine = proposed(w, w.people.owner)
        assert reject(client, w.people.owner, mine["id"]).json()["status"] == "rejected"
        by_key = proposed(w)
        response = reject(client, w.cast.funder, by_key["id"])
        assert response.status_code == 200, response.text
        key_id = w.cast.funder.key.removeprefix("vl_").rpartition("_")[0]
        assert response.json()["rejected_by"] == key_id


def test_covered_claims_are_not_proposed_again(settings: Settings) -> None:
    with client_for(settings) as client:
        w = approval_world(client)
        first = w.captured(100)
        body = proposed(w)
        before = claim_snapshot(client)
        assert_problem(
            propose(client, w.people.officer, w.programme_id, w.cast.supplier.id),
            409,
            "nothing_to_settle",
        )
        assert claim_snapshot(client) == before
        # A capture after the proposal is not covered by it and stays payable.
        later = w.captured(70)
        second = proposed(w)
        assert (second["amount"], second["redemption_ids"]) == (70, [later])
        pending = client.get(
            "/v1/settlements", headers=w.cast.funder.headers, params={"status": "proposed"}
        ).json()["data"]
        assert sorted(s["id"] for s in pending) == sorted([body["id"], second["id"]])
        # Approved in either order, each pays what it covered.
        assert approve(client, w.people.approver, second["id"]).json()["amount"] == 70
        paid = approve(client, w.people.approver, body["id"]).json()
        assert (paid["amount"], paid["redemption_ids"]) == (100, [first])
        assert balances(client, w.cast.funder, w.programme_id)["payable"] == 0
        assert_problem(approve(client, w.people.owner, body["id"]), 409, "invalid_state")
        sound(w)


def test_unknown_and_other_parties_settlements_are_not_found(settings: Settings) -> None:
    with client_for(settings) as client:
        w = approval_world(client)
        w.captured()
        body = proposed(w)
        other = approval_world(client)
        for who in (other.people.owner, other.cast.funder):
            assert_problem(approve(client, who, body["id"]), 404, "not_found")
            assert_problem(reject(client, who, body["id"]), 404, "not_found")
        unknown = "stl_01ARZ3NDEKTSV4RRFFQ69G5FAV"
        assert_problem(approve(client, w.people.approver, unknown), 404, "not_found")
        assert_problem(reject(client, w.people.approver, unknown), 404, "not_found")
        response = client.post(
            f"/v1/settlements/{body['id']}/reject", headers=w.people.approver.headers, json={}
        )
        assert_problem(response, 422, "validation_error")
