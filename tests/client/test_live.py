"""The README tour with the Python client against a real server (uvicorn, both
backends), sync and async; errors carry the server's code; iterators cross pages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.client.conftest import Served
from voucherledger.client import AsyncClient, Client, NotFoundError, ValidationError

pytestmark = pytest.mark.slow

CATEGORIES = ["leadership", "fundraising", "governance"]
GROUP = {
    "kind": "group",
    "name": "Kumasi Hometown Association",
    "group": {
        "group_type": "hometown_association",
        "origin_country": "GH",
        "residence_country": "NL",
        "women_led": True,
    },
}


def tour(url: str, admin_key: str) -> dict[str, Any]:
    """The README's step-by-step story, every step through the client."""
    with Client(url, api_key=admin_key) as admin:
        assert admin.get_me()["kind"] == "admin"
        funder = admin.create_account(
            body={"kind": "funder", "name": "Diaspora Development Fund", "country": "NL"}
        )
        group = admin.create_account(body=GROUP)
        supplier = admin.create_account(
            body={
                "kind": "supplier",
                "name": "Civic Skills Academy",
                "supplier": {"service_categories": CATEGORIES},
            }
        )
        funder_key = admin.create_key(funder["id"])["key"]
        supplier_key = admin.create_key(supplier["id"])["key"]
        group_key = admin.create_key(group["id"])["key"]
    with (
        Client(url, api_key=funder_key) as f,
        Client(url, api_key=supplier_key) as s,
        Client(url, api_key=group_key) as g,
    ):
        assert group["id"] in [a["id"] for a in f.iter_list_accounts(kind="group")]
        programme = f.create_programme(
            body={
                "name": "Capacity vouchers 2027",
                "currency": "EUR",
                "service_categories": CATEGORIES,
                "rules": {"women_led_reserve_pct": 30, "max_voucher_amount": 250000},
            }
        )
        prg = programme["id"]
        f.create_deposit(prg, body={"amount": 5000000, "reference": "transfer 2027-01"})
        f.accredit_supplier(
            prg, body={"supplier_id": supplier["id"], "service_categories": ["leadership"]}
        )
        voucher = f.issue_voucher(prg, body={"group_id": group["id"], "amount": 150000})
        assert f.get_voucher_qr(voucher["id"]).startswith("<?xml")
        code = f.get_voucher(voucher["id"])["code"]
        claim = s.create_redemption(
            body={
                "voucher_code": code,
                "amount": 60000,
                "service_category": "leadership",
                "description": "Two-day board leadership course",
                "evidence": [{"kind": "attendance", "reference": "sign-in sheet 14 March"}],
            }
        )
        assert claim["status"] == "pending"
        assert g.confirm_redemption(claim["id"])["status"] == "captured"
        g.create_feedback(
            claim["id"],
            body={"rating": 5, "outcome": "The board now meets monthly", "outcome_kind": "process"},
        )
        settlement = f.create_settlement(
            prg, body={"supplier_id": supplier["id"], "payout_reference": "SEPA 2027-03-31"}
        )
        assert settlement["status"] in ("settled", "proposed")
        return {"programme": f.get_programme(prg), "claim": claim, "settlement": settlement}


def test_the_readme_tour_with_the_client(served: Served) -> None:
    result = tour(served.url, served.admin_key)
    balances = result["programme"]["balances"]
    assert balances, result["programme"]
    assert result["settlement"]["supplier_id"] == result["claim"]["supplier_id"]


def test_problems_carry_the_servers_code_and_iterators_cross_pages(served: Served) -> None:
    with Client(served.url, api_key=served.admin_key) as admin:
        with pytest.raises(NotFoundError) as missing:
            admin.get_account("acc_nothing")
        assert missing.value.status == 404
        assert missing.value.code == "not_found"
        with pytest.raises(ValidationError) as invalid:
            admin.create_account(body={"kind": "group", "name": "No profile"})
        assert invalid.value.status == 422
        assert invalid.value.code
        made = [
            admin.create_account(body={"kind": "auditor", "name": f"Audit office {n}"})["id"]
            for n in range(3)
        ]
        seen = [a["id"] for a in admin.iter_list_accounts(kind="auditor", limit=1)]
        assert seen == sorted(seen, key=seen.index)  # no repeats in order
        assert len(seen) == len(set(seen))
        assert set(made) <= set(seen)
        page = admin.list_accounts(kind="auditor", limit=1)
        assert len(page["data"]) == 1
        assert page["next_cursor"]


def test_the_async_client_runs_a_short_tour(served: Served) -> None:
    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with AsyncClient(served.url, api_key=served.admin_key) as admin:
            funder = await admin.create_account(
                body={"kind": "funder", "name": "Async Fund", "country": "NL"}
            )
            key = (await admin.create_key(funder["id"]))["key"]
        async with AsyncClient(served.url, api_key=key) as f:
            programme = await f.create_programme(
                body={"name": "Async vouchers", "currency": "EUR", "service_categories": CATEGORIES}
            )
            await f.create_deposit(programme["id"], body={"amount": 1000, "reference": "t1"})
            listed = [p async for p in f.iter_list_programmes(limit=1)]
            return await f.get_programme(programme["id"]), listed

    programme, listed = asyncio.run(run())
    assert [p["id"] for p in listed] == [programme["id"]]
    assert programme["balances"]
