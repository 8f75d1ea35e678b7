"""A settlement records the supplier's payout IBAN as it stood when proposed, and its
``settle`` transaction carries it: the ledger says where each payout went, even if the
supplier changes its IBAN between proposal and approval."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.accounts import Party
from tests.factories.app import client_for
from tests.factories.programmes import issue, session_factory
from tests.factories.redemptions import claim, claim_programme, make_cast, settle
from tests.factories.settlements import approval_world, approve, get_settlement, propose
from voucherledger.core.settings import Settings

FIRST = "DE89370400440532013000"
SECOND = "GB82WEST12345698765432"


def set_iban(client: TestClient, supplier: Party, iban: str | None) -> None:
    response = client.patch(
        f"/v1/accounts/{supplier.id}/supplier-profile",
        headers=supplier.headers,
        json={"payout_iban": iban},
    )
    assert response.status_code == 200, response.text


def settle_metadata(client: TestClient, transaction_id: str) -> dict[str, Any]:
    with session_factory(client)() as session:
        raw = session.execute(
            text("SELECT metadata FROM ledger_transactions WHERE id = :id AND kind = 'settle'"),
            {"id": transaction_id},
        ).scalar_one()
    found: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
    return found


def test_a_single_approval_settlement_records_the_iban(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        pid = claim_programme(
            client, c, accredit_for=(c.supplier,), rules={"requires_group_confirmation": False}
        )["id"]
        code = issue(client, c.manager, pid, c.group.id, 5_000)["code"]
        set_iban(client, c.supplier, FIRST)
        claim(client, c.supplier, code, 1_000)
        response = settle(client, c.funder, pid, c.supplier.id)
        assert response.status_code == 201, response.text
        done = response.json()
        assert done["payout_iban"] == FIRST
        assert settle_metadata(client, done["transaction_id"])["payout_iban"] == FIRST
        assert get_settlement(client, c.supplier, done["id"])["payout_iban"] == FIRST
        # The auditor reads the settlement, without the IBAN.
        assert get_settlement(client, c.auditor, done["id"])["payout_iban"] is None
        listed = client.get("/v1/settlements", headers=c.auditor.headers).json()["data"]
        assert [s["payout_iban"] for s in listed] == [None]

        # A supplier with no IBAN set: the payout records that there was none.
        claim(client, c.supplier, code, 500)
        set_iban(client, c.supplier, None)
        later = settle(client, c.funder, pid, c.supplier.id, "wire 2").json()
        assert later["payout_iban"] is None
        meta = settle_metadata(client, later["transaction_id"])
        assert "payout_iban" in meta
        assert meta["payout_iban"] is None


def test_an_approved_payout_goes_to_the_iban_of_its_proposal(settings: Settings) -> None:
    with client_for(settings) as client:
        world = approval_world(client)
        supplier = world.cast.supplier
        set_iban(client, supplier, FIRST)
        world.captured(300)
        proposal = propose(client, world.people.officer, world.programme_id, supplier.id)
        assert proposal.status_code == 201, proposal.text
        assert proposal.json()["payout_iban"] == FIRST
        set_iban(client, supplier, SECOND)  # after the proposal: not what is paid to
        approved = approve(client, world.people.approver, proposal.json()["id"])
        assert approved.status_code == 200, approved.text
        assert approved.json()["payout_iban"] == FIRST
        assert settle_metadata(client, approved.json()["transaction_id"])["payout_iban"] == FIRST
