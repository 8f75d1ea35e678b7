"""Claims over HTTP, told as a bookkeeping story.

A funder funds a programme, a group gets a voucher, a supplier claims against
it, the group confirms, the supplier refunds part, claims again, the funder
settles and the group gives feedback. After every step this test's own books —
each voucher's balance and hold, each supplier's payable and payout, the
programme's ``balances`` — must equal what the API shows and what the ledger
holds; ``deposited`` is the sum of the other seven balances, the trial balance
sums to zero, the ledger's guarantees hold, and at the end the seal chain
verifies. Then the same without group confirmation (captured at once, a voucher
exhausted and made active again by a refund), and holds that time out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories.app import client_for
from tests.factories.ledger import SIGNER
from tests.factories.programmes import (
    assert_problem,
    balances,
    issue,
    ledger_problems,
    list_all,
    session_factory,
)
from tests.factories.redemptions import (
    Cast,
    claim,
    claim_programme,
    claim_snapshot,
    decide,
    feedback,
    get_claim,
    get_voucher,
    make_cast,
    moved_clock,
    paid,
    payable,
    refund,
    settle,
    sweep,
    today,
    voucher_accounts,
)
from voucherledger import ledger
from voucherledger.core.settings import Settings
from voucherledger.ledger.sealer import seal_pending
from voucherledger.ledger.verify import verify_database


@dataclass
class Books:
    """The programme's money as this test counts it, independently of the service."""

    deposited: int = 0
    unissued: int = 0
    vouchers: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # balance, held, status
    payable: dict[str, int] = field(default_factory=dict)  # supplier -> payable
    paid: dict[str, int] = field(default_factory=dict)  # supplier -> paid out

    def accredited(self, *supplier_ids: str) -> None:
        """Accreditation opens the supplier's payable account, empty."""
        for supplier_id in supplier_ids:
            self.payable.setdefault(supplier_id, 0)

    def deposit(self, amount: int) -> None:
        self.deposited += amount
        self.unissued += amount

    def issued(self, voucher: dict[str, Any]) -> None:
        self.unissued -= voucher["amount"]
        self.vouchers[voucher["id"]] = (voucher["amount"], 0, "active")

    def _set(self, voucher_id: str, balance: int, held: int, status: str | None = None) -> None:
        _, _, was = self.vouchers[voucher_id]
        if status is None:
            status = was
            if was == "active" and balance == 0:
                status = "exhausted"
            elif was == "exhausted" and balance > 0:
                status = "active"
        self.vouchers[voucher_id] = (balance, held, status)

    def hold(self, voucher_id: str, amount: int) -> None:
        balance, held, _ = self.vouchers[voucher_id]
        self._set(voucher_id, balance - amount, held + amount)

    def confirm(self, voucher_id: str, supplier_id: str, amount: int) -> None:
        balance, held, _ = self.vouchers[voucher_id]
        self._set(voucher_id, balance, held - amount)
        self.payable[supplier_id] = self.payable.get(supplier_id, 0) + amount

    def capture(self, voucher_id: str, supplier_id: str, amount: int) -> None:
        balance, held, _ = self.vouchers[voucher_id]
        self._set(voucher_id, balance - amount, held)
        self.payable[supplier_id] = self.payable.get(supplier_id, 0) + amount

    def release(self, voucher_id: str, amount: int, *, ended: bool = False) -> None:
        """A hold voided: back to the voucher, or to the budget once the voucher ended."""
        balance, held, _ = self.vouchers[voucher_id]
        if ended:
            self.unissued += amount
            self._set(voucher_id, balance, held - amount)
        else:
            self._set(voucher_id, balance + amount, held - amount)

    def refund(self, voucher_id: str, supplier_id: str, amount: int) -> None:
        balance, held, _ = self.vouchers[voucher_id]
        self.payable[supplier_id] -= amount
        self._set(voucher_id, balance + amount, held)

    def expire(self, voucher_id: str) -> int:
        balance, held, _ = self.vouchers[voucher_id]
        self.unissued += balance
        self.vouchers[voucher_id] = (0, held, "expired")
        return balance

    def settle(self, supplier_id: str) -> int:
        amount = self.payable[supplier_id]
        self.payable[supplier_id] = 0
        self.paid[supplier_id] = self.paid.get(supplier_id, 0) + amount
        return amount

    def balances(self) -> dict[str, int]:
        return {
            "deposited": self.deposited,
            "unissued": self.unissued,
            "unissued_women_led_reserve": 0,
            "outstanding": sum(balance for balance, _, _ in self.vouchers.values()),
            "held": sum(held for _, held, _ in self.vouchers.values()),
            "payable": sum(self.payable.values()),
            "settled": sum(self.paid.values()),
            "returned_to_funder": 0,
        }


def check(client: TestClient, cast: Cast, programme_id: str, books: Books) -> None:
    """The books, as every party sees them over HTTP and as the ledger holds them."""
    seen = balances(client, cast.funder, programme_id)  # also: deposited adds up
    assert seen == books.balances()
    assert balances(client, cast.auditor, programme_id) == seen
    for voucher_id, (balance, held, status) in books.vouchers.items():
        shown = get_voucher(client, cast.funder, voucher_id)
        assert (shown["balance"], shown["held"], shown["status"]) == (balance, held, status)
        assert voucher_accounts(client, voucher_id) == (balance, held)
    for supplier_id, owed in books.payable.items():
        assert payable(client, supplier_id, programme_id) == owed
        assert paid(client, supplier_id) == books.paid.get(supplier_id, 0)
    with session_factory(client)() as session:
        assert ledger.trial_balance(session).totals == {"EUR": 0}
    assert ledger_problems(client) == []


def journal_kinds(client: TestClient, programme_id: str) -> list[str]:
    with session_factory(client)() as session:
        rows = session.execute(
            text("SELECT kind FROM ledger_transactions WHERE programme_id = :p ORDER BY id"),
            {"p": programme_id},
        )
        return [kind for (kind,) in rows]


def transaction_count(client: TestClient) -> int:
    with session_factory(client)() as session:
        return int(session.execute(text("SELECT count(*) FROM ledger_transactions")).scalar_one())


def test_issue_claim_confirm_refund_claim_settle_feedback(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        books = Books()
        programme = claim_programme(client, c, 100_000, accredit_for=(c.supplier,))
        pid = programme["id"]
        assert programme["rules"]["requires_group_confirmation"] is True
        assert programme["rules"]["hold_days"] == 14
        books.accredited(c.supplier.id)
        books.deposit(100_000)
        check(client, c, pid, books)

        # Issue: a voucher of 10,000 for the group.
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        vid, code = voucher["id"], voucher["code"]
        books.issued(voucher)
        check(client, c, pid, books)

        # Claim: the programme wants the group's confirmation, so 4,000 are held.
        first = claim(
            client,
            c.supplier,
            code.lower().replace("-", " "),  # typed loosely, still the same code
            4_000,
            delivered_on=today().isoformat(),
            evidence=[
                {"kind": "invoice", "reference": "INV-7"},
                {"kind": "attendance", "reference": "sheet 14"},
            ],
        )
        assert first["id"].startswith("red_")
        assert (first["status"], first["amount"], first["refunded_amount"]) == ("pending", 4_000, 0)
        assert (first["voucher_id"], first["programme_id"]) == (vid, pid)
        assert (first["supplier_id"], first["group_id"]) == (c.supplier.id, c.group.id)
        assert (first["currency"], first["service_category"]) == ("EUR", "leadership")
        assert first["settled"] is False
        assert first["delivered_on"] == today().isoformat()
        assert first["evidence"] == [
            {"kind": "invoice", "reference": "INV-7"},
            {"kind": "attendance", "reference": "sheet 14"},
        ]
        created = datetime.fromisoformat(first["created_at"])
        assert datetime.fromisoformat(first["hold_expires_at"]) - created == timedelta(days=14)
        books.hold(vid, 4_000)
        check(client, c, pid, books)
        assert get_claim(client, c.group, first["id"]) == first
        assert get_claim(client, c.auditor, first["id"]) == first

        # Confirm: the held value becomes the supplier's payable.
        confirmed = decide(client, c.group, first["id"], "confirm")
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "captured"
        assert confirmed.json()["hold_expires_at"] == first["hold_expires_at"]
        books.confirm(vid, c.supplier.id, 4_000)
        check(client, c, pid, books)

        # A partial refund by the supplier: 1,500 back to the voucher.
        refunded = refund(client, c.supplier, first["id"], 1_500)
        assert refunded.status_code == 201, refunded.text
        assert (refunded.json()["status"], refunded.json()["refunded_amount"]) == (
            "captured",
            1_500,
        )
        books.refund(vid, c.supplier.id, 1_500)
        check(client, c, pid, books)
        # ... and another by the manager: refunds add up.
        refunded = refund(client, c.manager, first["id"], 500)
        assert refunded.status_code == 201, refunded.text
        assert refunded.json()["refunded_amount"] == 2_000
        books.refund(vid, c.supplier.id, 500)
        check(client, c, pid, books)

        # A second claim, confirmed too.
        second = claim(client, c.supplier, code, 3_000, "fundraising")
        assert second["status"] == "pending"
        books.hold(vid, 3_000)
        check(client, c, pid, books)
        confirmed = decide(client, c.group, second["id"], "confirm")
        assert confirmed.status_code == 200, confirmed.text
        books.confirm(vid, c.supplier.id, 3_000)
        check(client, c, pid, books)
        assert books.payable[c.supplier.id] == 4_000 - 2_000 + 3_000

        # Settle: the funder pays the supplier's whole payable.
        settled = settle(client, c.funder, pid, c.supplier.id, "wire 2025-001")
        assert settled.status_code == 201, settled.text
        body = settled.json()
        assert body["id"].startswith("stl_")
        assert (body["amount"], body["currency"]) == (books.settle(c.supplier.id), "EUR")
        assert body["amount"] == 5_000
        assert body["redemption_ids"] == sorted([first["id"], second["id"]])
        assert (body["programme_id"], body["supplier_id"]) == (pid, c.supplier.id)
        assert body["payout_reference"] == "wire 2025-001"
        check(client, c, pid, books)
        for redemption_id in (first["id"], second["id"]):
            assert get_claim(client, c.supplier, redemption_id)["settled"] is True
        listed = list_all(client, c.supplier.headers, "/v1/settlements")
        assert [(s["id"], s["redemption_ids"]) for s in listed] == [
            (body["id"], body["redemption_ids"])
        ]

        # Feedback by the group, shown in the programme's supplier list.
        rated = feedback(client, c.group, first["id"], rating=5)
        assert rated.status_code == 201, rated.text
        assert (rated.json()["redemption_id"], rated.json()["rating"]) == (first["id"], 5)
        assert rated.json()["outcome_kind"] == "process"
        rated = feedback(client, c.group, second["id"], rating=2)
        assert rated.status_code == 201, rated.text
        suppliers = client.get(f"/v1/programmes/{pid}/suppliers", headers=c.group.headers)
        assert suppliers.status_code == 200, suppliers.text
        assert [
            (s["supplier_id"], s["claim_count"], s["feedback_count"], s["average_rating"])
            for s in suppliers.json()
        ] == [(c.supplier.id, 2, 2, 3.5)]
        check(client, c, pid, books)  # feedback moves no money

        # Each outcome was exactly one journal transaction.
        assert journal_kinds(client, pid) == [
            "deposit",
            "issue",
            "hold",
            "capture",
            "refund",
            "refund",
            "hold",
            "capture",
            "settle",
        ]
        listed_claims = list_all(client, c.funder.headers, "/v1/redemptions", programme_id=pid)
        assert [(r["id"], r["status"], r["settled"]) for r in listed_claims] == [
            (first["id"], "captured", True),
            (second["id"], "captured", True),
        ]

        # The seal chain covers every transaction and verifies.
        committed = transaction_count(client)
        assert seal_pending(session_factory(client), SIGNER) == committed
        with session_factory(client)() as session:
            result = verify_database(session, public_key=SIGNER.public_key_hex)
        assert result.ok, result.error
        assert result.count == committed


def test_without_group_confirmation_a_claim_is_captured_at_once(settings: Settings) -> None:
    with client_for(settings) as client:
        c = make_cast(client)
        books = Books()
        programme = claim_programme(
            client,
            c,
            50_000,
            accredit_for=(c.supplier, c.other_supplier),
            rules={"requires_group_confirmation": False},
        )
        pid = programme["id"]
        books.accredited(c.supplier.id, c.other_supplier.id)
        books.deposit(50_000)
        voucher = issue(client, c.funder, pid, c.group.id, 5_000)
        vid = voucher["id"]
        books.issued(voucher)
        check(client, c, pid, books)

        made = claim(client, c.supplier, voucher["code"], 2_000)
        assert (made["status"], made["hold_expires_at"]) == ("captured", None)
        books.capture(vid, c.supplier.id, 2_000)
        check(client, c, pid, books)

        # Spending the rest exhausts the voucher ...
        rest = claim(client, c.other_supplier, voucher["code"], 3_000, "governance")
        assert rest["status"] == "captured"
        books.capture(vid, c.other_supplier.id, 3_000)
        check(client, c, pid, books)
        assert get_voucher(client, c.group, vid)["status"] == "exhausted"

        # ... and a refund makes it active again.
        refunded = refund(client, c.funder, rest["id"], 1_000)
        assert refunded.status_code == 201, refunded.text
        books.refund(vid, c.other_supplier.id, 1_000)
        check(client, c, pid, books)
        assert get_voucher(client, c.group, vid)["status"] == "active"

        # A captured claim is not for the group to decide any more.
        state = claim_snapshot(client)
        assert_problem(decide(client, c.group, made["id"], "confirm"), 409, "invalid_state")
        assert_problem(decide(client, c.group, made["id"], "reject"), 409, "invalid_state")
        assert_problem(decide(client, c.supplier, made["id"], "cancel"), 409, "invalid_state")
        assert claim_snapshot(client) == state

        # Each supplier is settled on its own.
        for supplier, owed in ((c.supplier, 2_000), (c.other_supplier, 2_000)):
            settled = settle(client, c.funder, pid, supplier.id)
            assert settled.status_code == 201, settled.text
            assert settled.json()["amount"] == books.settle(supplier.id) == owed
            check(client, c, pid, books)
        assert journal_kinds(client, pid) == [
            "deposit",
            "issue",
            "capture",
            "capture",
            "refund",
            "settle",
            "settle",
        ]


def test_holds_time_out_and_the_sweep_releases_them(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(settings) as client, moved_clock(monkeypatch) as clock:
        c = make_cast(client)
        books = Books()
        programme = claim_programme(
            client, c, 60_000, accredit_for=(c.supplier,), rules={"hold_days": 3}
        )
        pid = programme["id"]
        books.accredited(c.supplier.id)
        books.deposit(60_000)
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        vid = voucher["id"]
        books.issued(voucher)
        # A voucher that expires before its hold would time out.
        short = issue(
            client,
            c.manager,
            pid,
            c.group.id,
            4_000,
            expires_at=(clock() + timedelta(days=1)).isoformat(),
        )
        books.issued(short)

        kept = claim(client, c.supplier, voucher["code"], 1_000)
        lapsing = claim(client, c.supplier, voucher["code"], 2_000)
        on_short = claim(client, c.supplier, short["code"], 1_500)
        hold_expires_at = datetime.fromisoformat(lapsing["hold_expires_at"])
        assert hold_expires_at - datetime.fromisoformat(lapsing["created_at"]) == timedelta(days=3)
        for made in (kept, lapsing):
            books.hold(vid, made["amount"])
        books.hold(short["id"], 1_500)
        check(client, c, pid, books)

        # Two days on: no hold has timed out; a sweep releases nothing.
        clock.advance(timedelta(days=2))
        # The short voucher has expired by now, so the sweep expires it: its unheld
        # value goes back to the budget, its hold stays.
        swept = sweep(client, c.manager, pid)
        assert swept.status_code == 200, swept.text
        assert swept.json() == {
            "expired_vouchers": 1,
            "returned_amount": 2_500,
            "released_holds": 0,
            "released_amount": 0,
        }
        assert books.expire(short["id"]) == 2_500
        check(client, c, pid, books)
        confirmed = decide(client, c.group, kept["id"], "confirm")
        assert confirmed.status_code == 200, confirmed.text
        books.confirm(vid, c.supplier.id, 1_000)
        check(client, c, pid, books)

        # Past the holds' expiry: too late to confirm, and nothing is written.
        clock.advance(hold_expires_at - clock() + timedelta(seconds=1))
        state = claim_snapshot(client)
        assert_problem(decide(client, c.group, lapsing["id"], "confirm"), 409, "invalid_state")
        assert claim_snapshot(client) == state
        assert get_claim(client, c.group, lapsing["id"])["status"] == "pending"

        # The sweep releases both timed-out holds: back to the live voucher, and to the
        # budget for the voucher that has expired meanwhile.
        swept = sweep(client, c.funder, pid)
        assert swept.status_code == 200, swept.text
        assert swept.json() == {
            "expired_vouchers": 0,
            "returned_amount": 0,
            "released_holds": 2,
            "released_amount": 3_500,
        }
        books.release(vid, 2_000)
        books.release(short["id"], 1_500, ended=True)
        check(client, c, pid, books)
        for made in (lapsing, on_short):
            assert get_claim(client, c.supplier, made["id"])["status"] == "voided"
        assert get_claim(client, c.supplier, kept["id"])["status"] == "captured"

        # A second sweep finds nothing; a voided claim can no longer be decided.
        again = sweep(client, c.funder, pid)
        assert again.json() == {
            "expired_vouchers": 0,
            "returned_amount": 0,
            "released_holds": 0,
            "released_amount": 0,
        }
        state = claim_snapshot(client)
        assert_problem(decide(client, c.group, lapsing["id"], "reject"), 409, "invalid_state")
        assert_problem(decide(client, c.supplier, lapsing["id"], "cancel"), 409, "invalid_state")
        assert claim_snapshot(client) == state
        check(client, c, pid, books)
        assert journal_kinds(client, pid) == [
            "deposit",
            "issue",
            "issue",
            "hold",
            "hold",
            "hold",
            "expire",
            "capture",
            "void",
            "void",
        ]
