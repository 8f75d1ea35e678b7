"""The whole life of a programme over HTTP, told as a bookkeeping story.

An operator sets up the parties; a funder creates a programme that ring-fences
30 % for women-led groups, funds it, has its manager accredit suppliers and
issue vouchers, revokes some, lets one expire and finally closes the
programme. After every step the programme's ``balances`` must equal what this
test computes on its own, add up to what was deposited, and agree with the
ledger, whose trial balance sums to zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.programmes import (
    accredit,
    assert_problem,
    balances,
    create_programme,
    deposit,
    issue,
    issue_batch,
    ledger_balances_of,
    ledger_problems,
    list_all,
    snapshot,
    voucher_item,
)
from voucherledger.core.settings import Settings

CODE = re.compile(r"^VL(-[0-9A-HJKMNP-TV-Z]{4}){4}-[0-9A-HJKMNP-TV-Z]$")
CATEGORIES = ["leadership", "fundraising", "governance", "financial_management"]


@dataclass
class Expected:
    """The programme's money as this test counts it, independently of the service."""

    deposited: int = 0
    unissued: int = 0
    reserve: int = 0
    returned_to_funder: int = 0
    vouchers: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> balance, status
    drew_from_reserve: dict[str, int] = field(default_factory=dict)

    def issued(self, voucher: dict[str, Any], *, women_led: bool) -> None:
        amount: int = voucher["amount"]
        from_reserve = min(amount, self.reserve) if women_led else 0
        self.reserve -= from_reserve
        self.unissued -= amount - from_reserve
        self.vouchers[voucher["id"]] = (amount, "active")
        self.drew_from_reserve[voucher["id"]] = from_reserve

    def ended(self, voucher_id: str, status: str) -> int:
        remaining, _ = self.vouchers[voucher_id]
        to_reserve = min(remaining, self.drew_from_reserve[voucher_id])
        self.reserve += to_reserve
        self.unissued += remaining - to_reserve
        self.vouchers[voucher_id] = (0, status)
        return remaining

    def balances(self) -> dict[str, int]:
        return {
            "deposited": self.deposited,
            "unissued": self.unissued,
            "unissued_women_led_reserve": self.reserve,
            "outstanding": sum(balance for balance, _ in self.vouchers.values()),
            "held": 0,
            "payable": 0,
            "settled": 0,
            "returned_to_funder": self.returned_to_funder,
        }


@dataclass
class Cast:
    funder: Party
    manager: Party
    auditor: Party
    groups: dict[str, Party]
    suppliers: dict[str, Party]


def cast(client: TestClient) -> Cast:
    admin = admin_headers(client)
    profiles = {
        # name: group_type, origin_country, women_led
        "women_ng": ("womens_group", "NG", True),
        "hometown_gh_wl": ("hometown_association", "GH", True),
        "alumni_sn": ("alumni_association", "SN", False),
        "youth_gh": ("youth_group", "GH", False),
    }
    groups = {
        name: make_party(
            client,
            admin,
            "group",
            name=name,
            group={"group_type": kind, "origin_country": origin, "women_led": women_led},
        )
        for name, (kind, origin, women_led) in profiles.items()
    }
    suppliers = {
        "trainer": make_party(
            client,
            admin,
            "supplier",
            supplier={"service_categories": ["leadership", "fundraising", "marketing"]},
        ),
        "accountant": make_party(
            client,
            admin,
            "supplier",
            supplier={"service_categories": ["governance", "financial_management"]},
        ),
    }
    return Cast(
        funder=make_party(client, admin, "funder"),
        manager=make_party(client, admin, "manager"),
        auditor=make_party(client, admin, "auditor"),
        groups=groups,
        suppliers=suppliers,
    )


def check(client: TestClient, cast: Cast, programme_id: str, expected: Expected) -> None:
    """Balances as computed here, the same for every party, backed by the ledger."""
    seen = balances(client, cast.funder, programme_id)  # also checks they add up
    assert seen == expected.balances()
    assert balances(client, cast.manager, programme_id) == seen
    assert balances(client, cast.auditor, programme_id) == seen

    listed = list_all(client, cast.funder.headers, "/v1/vouchers", programme_id=programme_id)
    assert {v["id"]: (v["balance"], v["status"]) for v in listed} == expected.vouchers
    assert all(v["held"] == 0 for v in listed)

    in_ledger = ledger_balances_of(client, programme_id, cast.funder.id)
    assert list(in_ledger.values()) == [
        seen["unissued"],
        seen["unissued_women_led_reserve"],
        -(seen["deposited"] - seen["returned_to_funder"]),
    ]
    assert ledger_problems(client) == []


def test_a_programme_from_funding_to_closing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(settings) as client:
        c = cast(client)
        groups, suppliers = c.groups, c.suppliers
        expected = Expected()

        # The funder creates the programme; nothing is in it yet.
        programme = create_programme(
            client,
            c.funder,
            service_categories=CATEGORIES,
            rules={
                "women_led_reserve_pct": 30,
                "eligible_group_types": [
                    "womens_group",
                    "hometown_association",
                    "alumni_association",
                    "youth_group",
                ],
                "eligible_origin_countries": ["NG", "GH", "SN"],
                "max_voucher_amount": 50_000,
            },
            manager_ids=[c.manager.id],
            auditor_ids=[c.auditor.id],
        )
        pid = programme["id"]
        assert pid.startswith("prg_")
        assert programme["funder_id"] == c.funder.id
        assert programme["status"] == "open"
        assert programme["closed_at"] is None
        assert programme["manager_ids"] == [c.manager.id]
        assert programme["auditor_ids"] == [c.auditor.id]
        assert programme["service_categories"] == CATEGORIES
        assert programme["rules"]["women_led_reserve_pct"] == 30
        assert programme["rules"]["voucher_validity_days"] == 365
        assert programme["rules"]["requires_group_confirmation"] is True
        check(client, c, pid, expected)

        # Deposits: 30 % to the reserve, rounded down (30,000.3 and 299.7).
        for amount, to_reserve in ((100_001, 30_000), (999, 299)):
            made = deposit(client, c.funder, pid, amount, reference=f"wire {amount}")
            assert made["transaction_id"].startswith("txn_")
            assert made["amount"] == amount
            assert made["currency"] == "EUR"
            assert made["reference"] == f"wire {amount}"
            assert made["women_led_reserve_amount"] == to_reserve
            expected.deposited += amount
            expected.reserve += to_reserve
            expected.unissued += amount - to_reserve
            check(client, c, pid, expected)
        assert (expected.unissued, expected.reserve) == (70_701, 30_299)

        # The manager accredits suppliers for part of what they offer.
        trainer = accredit(client, c.manager, pid, suppliers["trainer"].id, ["leadership"])
        assert trainer["status"] == "active"
        assert trainer["service_categories"] == ["leadership"]
        accredit(
            client,
            c.manager,
            pid,
            suppliers["accountant"].id,
            ["governance", "financial_management"],
        )
        # Re-accrediting replaces the categories.
        trainer = accredit(
            client, c.funder, pid, suppliers["trainer"].id, ["leadership", "fundraising"]
        )
        assert trainer["service_categories"] == ["leadership", "fundraising"]
        listing = client.get(f"/v1/programmes/{pid}/suppliers", headers=c.auditor.headers)
        assert listing.status_code == 200, listing.text
        assert [
            (s["supplier_id"], s["service_categories"], s["status"]) for s in listing.json()
        ] == [
            (suppliers["trainer"].id, ["leadership", "fundraising"], "active"),
            (suppliers["accountant"].id, ["governance", "financial_management"], "active"),
        ]
        check(client, c, pid, expected)  # accreditation moves no money

        # Single vouchers by the manager: a women-led group draws on the reserve first.
        before = datetime.now(UTC)
        first = issue(client, c.manager, pid, groups["women_ng"].id, 20_000)
        assert CODE.match(first["code"]), first["code"]
        assert first["id"].startswith("vch_")
        assert (first["amount"], first["balance"], first["held"]) == (20_000, 20_000, 0)
        assert (first["status"], first["currency"]) == ("active", "EUR")
        assert first["group_id"] == groups["women_ng"].id
        assert first["programme_id"] == pid
        assert first["service_categories"] == CATEGORIES
        expires_at = datetime.fromisoformat(first["expires_at"])
        assert before + timedelta(days=365) <= expires_at <= datetime.now(UTC) + timedelta(days=365)
        expected.issued(first, women_led=True)
        check(client, c, pid, expected)
        assert expected.reserve == 10_299

        plain = issue(
            client,
            c.manager,
            pid,
            groups["alumni_sn"].id,
            10_000,
            service_categories=["governance"],
        )
        assert plain["service_categories"] == ["governance"]
        expected.issued(plain, women_led=False)
        check(client, c, pid, expected)
        assert expected.reserve == 10_299  # a group not led by women never touches it

        # A batch by the funder: the reserve runs out part-way through the third item.
        batch = issue_batch(
            client,
            c.funder,
            pid,
            [
                voucher_item(groups["hometown_gh_wl"].id, 4_000),
                voucher_item(groups["youth_gh"].id, 5_000, service_categories=["leadership"]),
                voucher_item(groups["women_ng"].id, 8_000),
            ],
        )
        assert [(v["group_id"], v["amount"], v["balance"]) for v in batch] == [
            (groups["hometown_gh_wl"].id, 4_000, 4_000),
            (groups["youth_gh"].id, 5_000, 5_000),
            (groups["women_ng"].id, 8_000, 8_000),
        ]
        assert len({v["code"] for v in [first, plain, *batch]}) == 5
        for voucher, women_led in zip(batch, (True, False, True), strict=True):
            expected.issued(voucher, women_led=women_led)
        check(client, c, pid, expected)
        assert (expected.reserve, expected.drew_from_reserve[batch[2]["id"]]) == (0, 6_299)
        assert expected.unissued == 70_701 - 10_000 - 5_000 - 1_701

        # A group holding a voucher sees where it can spend it.
        seen_by_group = client.get(
            f"/v1/programmes/{pid}/suppliers", headers=groups["youth_gh"].headers
        )
        assert seen_by_group.status_code == 200
        assert len(seen_by_group.json()) == 2
        # Suspending a supplier shows in the listing.
        suspended = client.delete(
            f"/v1/programmes/{pid}/accreditations/{suppliers['accountant'].id}",
            headers=c.manager.headers,
        )
        assert suspended.status_code == 204
        after = client.get(f"/v1/programmes/{pid}/suppliers", headers=c.funder.headers).json()
        assert [s["status"] for s in after] == ["active", "suspended"]

        # Revoking returns the remaining value: to the reserve up to what the voucher drew
        # from it (6,299 of 8,000), the rest to the unissued budget.
        revoked = client.post(
            f"/v1/vouchers/{batch[2]['id']}/revoke", headers=c.manager.headers, json={"reason": "x"}
        )
        assert revoked.status_code == 200, revoked.text
        assert (revoked.json()["status"], revoked.json()["balance"]) == ("revoked", 0)
        assert expected.ended(batch[2]["id"], "revoked") == 8_000
        check(client, c, pid, expected)
        assert expected.reserve == 6_299

        revoked = client.post(
            f"/v1/vouchers/{plain['id']}/revoke", headers=c.funder.headers, json={"reason": "dup"}
        )
        assert revoked.status_code == 200, revoked.text
        expected.ended(plain["id"], "revoked")
        check(client, c, pid, expected)
        assert expected.reserve == 6_299  # none of it came from the reserve

        # Revoked is final.
        state = snapshot(client)
        again = client.post(
            f"/v1/vouchers/{plain['id']}/revoke", headers=c.funder.headers, json={"reason": "again"}
        )
        assert_problem(again, 409, "invalid_state")
        assert snapshot(client) == state

        # Expiry: a voucher due tomorrow is left alone today and expired by a sweep the
        # day after; its value goes back to the reserve it came from.
        short = issue(
            client,
            c.manager,
            pid,
            groups["hometown_gh_wl"].id,
            2_000,
            expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
        )
        expected.issued(short, women_led=True)
        check(client, c, pid, expected)
        assert expected.reserve == 4_299

        today = client.post(f"/v1/programmes/{pid}/sweep", headers=c.manager.headers)
        assert today.status_code == 200, today.text
        assert today.json()["expired_vouchers"] == 0
        assert today.json()["returned_amount"] == 0
        check(client, c, pid, expected)

        later = datetime.now(UTC) + timedelta(days=2)
        with monkeypatch.context() as patched:
            patched.setattr("voucherledger.sweep.service.utcnow", lambda: later)
            swept = client.post(f"/v1/programmes/{pid}/sweep", headers=c.funder.headers)
            assert swept.status_code == 200, swept.text
            assert swept.json() == {
                "expired_vouchers": 1,
                "returned_amount": 2_000,
                "released_holds": 0,
                "released_amount": 0,
            }
            expected.ended(short["id"], "expired")
            check(client, c, pid, expected)
            swept_again = client.post(f"/v1/programmes/{pid}/sweep", headers=c.funder.headers)
            assert swept_again.json()["expired_vouchers"] == 0
        assert expected.reserve == 6_299
        check(client, c, pid, expected)

        state = snapshot(client)
        assert_problem(
            client.post(
                f"/v1/vouchers/{short['id']}/revoke", headers=c.funder.headers, json={"reason": "x"}
            ),
            409,
            "invalid_state",
        )
        assert snapshot(client) == state
        statuses = {
            v["id"]: v["status"]
            for v in list_all(client, c.auditor.headers, "/v1/vouchers", programme_id=pid)
        }
        assert sorted(statuses.values()) == [
            "active",
            "active",
            "active",
            "expired",
            "revoked",
            "revoked",
        ]

        # Closing returns the unissued budget and the reserve to the funder; vouchers
        # already issued stay live.
        outstanding = expected.balances()["outstanding"]
        closed = client.post(f"/v1/programmes/{pid}/close", headers=c.funder.headers)
        assert closed.status_code == 200, closed.text
        assert closed.json()["status"] == "closed"
        assert closed.json()["closed_at"] is not None
        expected.returned_to_funder = expected.unissued + expected.reserve
        expected.unissued = expected.reserve = 0
        assert closed.json()["balances"] == expected.balances()
        assert expected.balances()["outstanding"] == outstanding == 20_000 + 4_000 + 5_000
        check(client, c, pid, expected)

        # A closed programme takes no more money and issues nothing.
        state = snapshot(client)
        refused = [
            client.post(
                f"/v1/programmes/{pid}/vouchers",
                headers=c.manager.headers,
                json=voucher_item(groups["women_ng"].id, 1),
            ),
            client.post(
                f"/v1/programmes/{pid}/vouchers/batch",
                headers=c.funder.headers,
                json={"vouchers": [voucher_item(groups["women_ng"].id, 1)]},
            ),
            client.post(
                f"/v1/programmes/{pid}/deposits",
                headers=c.funder.headers,
                json={"amount": 1_000, "reference": "late"},
            ),
            client.post(f"/v1/programmes/{pid}/close", headers=c.funder.headers),
        ]
        for response in refused:
            assert_problem(response, 409, "programme_closed")
        assert snapshot(client) == state
        check(client, c, pid, expected)
