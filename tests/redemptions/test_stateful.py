"""Claims over the HTTP API as a random sequence of operations, against a model. A
hypothesis state machine claims (random voucher, supplier, amount, category, now and
then a mistyped code), confirms, rejects, cancels, refunds, settles (in a
``two_person`` programme: proposes, as the funder's key or one of its members, then
approves or rejects as one of them), gives feedback, revokes vouchers, suspends and
re-accredits suppliers, sweeps, and moves the clock of claims and vouchers forward —
on a fresh database per example, through the app's TestClient. It keeps its own
model of every voucher, claim, settlement, payable, payout and programme budget, and
predicts each response: the exact status and ``code`` of a refusal (always one the
endpoint documents in OpenAPI, never a 500), the body of a success. After every step
the API and the ledger must agree with the model; no voucher or hold is negative;
each programme's ``balances`` add up; every settlement reads as the model has it (a
proposed one moved no money); the journal holds exactly the transactions the model
expects; the trial balance sums to zero and the ledger's guarantees hold.

The rate limiter is replaced by one whose failures never age out, so that the
model can predict the 429s of a supplier that mistyped ten codes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.conftest import (
    TEST_SIGNING_KEY,
    drop_postgres_database,
    fresh_database,
    machine_settings,
)
from tests.factories.accounts import Party, make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.ledger import account_balances, journal_counts, ledger_violations
from tests.factories.people import Person, add_member
from tests.factories.programmes import (
    BALANCE_PARTS,
    PROBLEM_JSON,
    accredit,
    funded_programme,
    issue_batch,
    list_all,
    session_factory,
    voucher_item,
)
from tests.factories.redemptions import CLOCKED_MODULES, claim_body, mistyped
from voucherledger import chart
from voucherledger.core.settings import Settings
from voucherledger.redemptions.limiter import FailureLimiter

# The limiter's clock stands still, so failures never leave its window.
_LIMITER_TIME = datetime(2026, 1, 1, tzinfo=UTC)

Expected = tuple[int, str | None]  # status, and the problem's code for a refusal
OK_200: Expected = (200, None)
OK_201: Expected = (201, None)
CATEGORIES = ("leadership", "fundraising", "governance")


class FrozenClock:
    """The ``utcnow`` of claims and vouchers: stands still until the test moves it, so
    the model and the service agree on which holds and vouchers have run out."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def reset(self) -> None:
        self.now = datetime.now(UTC)


@dataclass
class Programme:
    id: str
    confirm: bool
    deposited: int
    unissued: int
    two_person: bool = False


@dataclass
class Voucher:
    id: str
    code: str
    programme: str
    categories: list[str]
    expires_at: datetime
    balance: int
    held: int = 0
    status: str = "active"


@dataclass
class Claim:
    id: str
    voucher: str
    programme: str
    supplier: str
    group: str
    amount: int
    status: str
    hold_expires_at: datetime | None
    refunded: int = 0
    settled: bool = False
    settlement: str | None = None  # the settlement covering it, proposed or settled
    feedback: bool = False


@dataclass
class Settlement:
    id: str
    programme: str
    supplier: str
    amount: int
    claims: list[str]
    status: str
    proposed_by: str
    approved_by: str | None = None


@dataclass
class Accreditation:
    categories: set[str]
    active: bool = True


@dataclass
class Model:
    programmes: dict[str, Programme] = field(default_factory=dict)
    vouchers: dict[str, Voucher] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    accreditations: dict[tuple[str, str], Accreditation] = field(default_factory=dict)
    payable: dict[tuple[str, str], int] = field(default_factory=dict)  # (supplier, programme)
    paid: dict[str, int] = field(default_factory=dict)  # supplier -> paid out
    settlements: dict[str, Settlement] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # failed code look-ups
    transactions: int = 0


def documented_codes(client: TestClient) -> dict[str, dict[int, set[str]]]:
    """Per operation id, per status: the problem codes its OpenAPI document lists."""
    paths: dict[str, dict[str, Any]] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {
        operation["operationId"]: {
            int(status): set(response.get("description", "").split(", "))
            for status, response in operation["responses"].items()
            if int(status) >= 400
        }
        for item in paths.values()
        for operation in item.values()
    }


pick = st.integers(min_value=0, max_value=10_000)  # an index into whatever exists
amounts = st.one_of(st.just(0), st.integers(min_value=1, max_value=4_000))  # 0: all there is


class ClaimsMachine(RuleBasedStateMachine):
    """Set ``new_settings``, ``drop_database`` and ``clock`` on a subclass before running."""

    new_settings: Callable[[], Settings]
    drop_database: Callable[[str], None]
    clock: FrozenClock

    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        self.settings = type(self).new_settings()
        self.clock.reset()
        self.client = self.stack.enter_context(client_for(self.settings))
        self.client.app.state.code_limiter = FailureLimiter(  # type: ignore[attr-defined]
            limit=10, window=60.0, clock=lambda: _LIMITER_TIME
        )
        self.documented = documented_codes(self.client)
        self.model = Model()
        self._cast()
        # A pending and a captured claim from the start, for the decisions to act on.
        self.claim(0, 0, 1_000, "leadership", False)
        self.claim(3, 0, 1_000, "leadership", False)

    def teardown(self) -> None:
        self.stack.close()
        type(self).drop_database(self.settings.database_url)

    # --- the world ---------------------------------------------------------------

    def _cast(self) -> None:
        client, m = self.client, self.model
        admin = admin_headers(client)
        self.funder = make_party(client, admin, "funder")
        self.groups = [make_party(client, admin, "group") for _ in range(2)]
        self.suppliers = [
            make_party(client, admin, "supplier", supplier={"service_categories": list(CATEGORIES)})
            for _ in range(2)
        ]
        self.parties: dict[str, Party] = {
            p.id: p for p in (self.funder, *self.groups, *self.suppliers)
        }
        # The funder's people, and its own key: who proposes, approves and rejects.
        self.actors: list[tuple[str, Party | Person]] = [
            ("key", self.funder),
            ("operator", add_member(client, self.funder.id, "operator")),
            ("approver", add_member(client, self.funder.id, "approver", totp=True)),
            ("approver", add_member(client, self.funder.id, "owner", totp=True)),
            ("no totp", add_member(client, self.funder.id, "approver")),
            ("viewer", add_member(client, self.funder.id, "viewer")),
        ]
        # "held": with the group's confirmation and 2-day holds; "direct": captured at
        # once; "approved": captured at once, and settled by two people.
        for confirm, amount, two_person in (
            (True, 30_000, False),
            (False, 20_000, False),
            (False, 20_000, True),
        ):
            made = funded_programme(
                client,
                self.funder,
                amount,
                rules={
                    "requires_group_confirmation": confirm,
                    "hold_days": 2,
                    "voucher_validity_days": 10 if confirm else 7,
                    "settlement_approval": "two_person" if two_person else "single",
                },
            )
            m.programmes[made["id"]] = Programme(made["id"], confirm, amount, amount, two_person)
            m.transactions += 1
        held, direct, approved = list(m.programmes)
        # Supplier 0 is accredited everywhere for everything; supplier 1 in the first
        # programme, only for leadership, and in the third.
        for supplier, programme, categories in (
            (self.suppliers[0], held, list(CATEGORIES)),
            (self.suppliers[0], direct, list(CATEGORIES)),
            (self.suppliers[1], held, ["leadership"]),
            (self.suppliers[0], approved, list(CATEGORIES)),
            (self.suppliers[1], approved, list(CATEGORIES)),
        ):
            accredit(client, self.funder, programme, supplier.id, categories)
            m.accreditations[(supplier.id, programme)] = Accreditation(set(categories))
            m.payable[(supplier.id, programme)] = 0
        for programme, items in (
            (
                held,
                [
                    voucher_item(self.groups[0].id, 5_000),
                    voucher_item(self.groups[1].id, 3_000, service_categories=["leadership"]),
                    voucher_item(
                        self.groups[0].id,
                        2_000,
                        expires_at=(self.clock() + timedelta(days=2)).isoformat(),
                    ),
                ],
            ),
            (direct, [voucher_item(self.groups[1].id, 4_000)]),
            (
                approved,
                [voucher_item(self.groups[0].id, 4_000), voucher_item(self.groups[1].id, 4_000)],
            ),
        ):
            for made in issue_batch(client, self.funder, programme, items):
                m.vouchers[made["id"]] = Voucher(
                    made["id"],
                    made["code"],
                    programme,
                    made["service_categories"],
                    datetime.fromisoformat(made["expires_at"]),
                    made["amount"],
                )
                m.programmes[programme].unissued -= made["amount"]
            m.transactions += 1

    # --- helpers -------------------------------------------------------------------

    def _expect(
        self, operation: str, response: httpx.Response, expected: Expected
    ) -> dict[str, Any]:
        """The response is what the model predicted; a refusal is a documented problem."""
        assert response.status_code != 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM_JSON, response.text
            code = response.json()["code"]
            documented = self.documented[operation].get(response.status_code, set())
            assert code in documented, f"{operation}: {code} is not documented"
            assert (response.status_code, code) == expected, response.text
        else:
            assert (response.status_code, None) == expected, response.text
        body: dict[str, Any] = response.json()
        return body

    def _claim(self, index: int) -> Claim | None:
        if not self.model.claims:
            return None
        return list(self.model.claims.values())[index % len(self.model.claims)]

    def _ended(self, voucher: Voucher) -> bool:
        return voucher.status in ("expired", "revoked") or voucher.expires_at <= self.clock()

    def _return(self, voucher: Voucher, amount: int) -> None:
        """Value back to a voucher: to it while it is live, else to the budget."""
        if self._ended(voucher):
            self.model.programmes[voucher.programme].unissued += amount
        else:
            voucher.balance += amount
            if voucher.status == "exhausted":
                voucher.status = "active"

    def _void(self, c: Claim) -> None:
        voucher = self.model.vouchers[c.voucher]
        voucher.held -= c.amount
        self._return(voucher, c.amount)
        c.status = "voided"
        self.model.transactions += 1

    # --- claims ----------------------------------------------------------------------

    @rule(
        voucher_index=pick,
        supplier_index=st.integers(min_value=0, max_value=1),
        amount=amounts,
        category=st.sampled_from(CATEGORIES),
        typo=st.sampled_from([False] * 7 + [True]),
    )
    def claim(
        self, voucher_index: int, supplier_index: int, amount: int, category: str, typo: bool
    ) -> None:
        m = self.model
        v = list(m.vouchers.values())[voucher_index % len(m.vouchers)]
        supplier = self.suppliers[supplier_index]
        amount = amount or max(v.balance, 1)
        expected = self._predict_claim(v, supplier.id, category, amount, typo)
        response = self.client.post(
            "/v1/redemptions",
            headers=supplier.headers,
            json=claim_body(mistyped(v.code) if typo else v.code, amount, category),
        )
        body = self._expect("create_redemption", response, expected)
        if expected != OK_201:
            return
        confirm = m.programmes[v.programme].confirm
        v.balance -= amount
        if v.balance == 0 and v.status == "active":
            v.status = "exhausted"
        if confirm:
            v.held += amount
        else:
            m.payable[(supplier.id, v.programme)] += amount
        hold_expires_at = self.clock() + timedelta(days=2) if confirm else None
        assert body["status"] == ("pending" if confirm else "captured")
        assert body["amount"] == amount
        assert body["hold_expires_at"] == (self._utc(hold_expires_at) if hold_expires_at else None)
        group = next(g for g in self.groups if g.id == body["group_id"])
        m.claims[body["id"]] = Claim(
            body["id"],
            v.id,
            v.programme,
            supplier.id,
            group.id,
            amount,
            body["status"],
            hold_expires_at,
        )
        m.transactions += 1

    @rule(voucher_index=pick, amount=st.integers(min_value=1, max_value=1_500))
    def claim_for_leadership(self, voucher_index: int, amount: int) -> None:
        """A claim likelier to succeed: supplier 0, accredited everywhere, small amount."""
        self.claim(voucher_index, 0, amount, "leadership", False)

    @rule(
        programme_index=st.integers(0, 2),
        group_index=st.integers(0, 1),
        amount=st.integers(min_value=500, max_value=5_000),
        narrow=st.booleans(),
    )
    def issue(self, programme_index: int, group_index: int, amount: int, narrow: bool) -> None:
        m = self.model
        p = list(m.programmes.values())[programme_index]
        expected: Expected = OK_201 if amount <= p.unissued else (409, "insufficient_funds")
        response = self.client.post(
            f"/v1/programmes/{p.id}/vouchers",
            headers=self.funder.headers,
            json=voucher_item(
                self.groups[group_index].id,
                amount,
                **({"service_categories": ["fundraising"]} if narrow else {}),
            ),
        )
        made = self._expect("issue_voucher", response, expected)
        if expected == OK_201:
            assert made["expires_at"] == self._utc(
                self.clock() + timedelta(days=10 if p.confirm else 7)
            )
            m.vouchers[made["id"]] = Voucher(
                made["id"],
                made["code"],
                p.id,
                made["service_categories"],
                datetime.fromisoformat(made["expires_at"]),
                amount,
            )
            p.unissued -= amount
            m.transactions += 1

    @staticmethod
    def _utc(moment: datetime) -> str:
        return moment.isoformat().replace("+00:00", "Z")

    def _predict_claim(
        self, v: Voucher, supplier_id: str, category: str, amount: int, typo: bool
    ) -> Expected:
        m = self.model
        if m.failures.get(supplier_id, 0) >= 10:
            return (429, "rate_limited")
        accreditation = m.accreditations.get((supplier_id, v.programme))
        if typo or accreditation is None:
            m.failures[supplier_id] = m.failures.get(supplier_id, 0) + 1
            return (422, "validation_error") if typo else (404, "not_found")
        if v.status == "revoked":
            return (409, "voucher_revoked")
        if v.status == "expired" or v.expires_at <= self.clock():
            return (409, "voucher_expired")
        if not accreditation.active or category not in accreditation.categories:
            return (403, "supplier_not_accredited")
        if category not in v.categories:
            return (422, "category_not_allowed")
        if amount > v.balance:
            return (409, "voucher_exhausted") if v.balance == 0 else (409, "insufficient_funds")
        return OK_201

    # --- decisions ---------------------------------------------------------------------

    @rule(index=pick, stranger=st.sampled_from([False] * 5 + [True]))
    def confirm(self, index: int, stranger: bool) -> None:
        c = self._claim(index)
        if c is None:
            return
        group = self._group(c, stranger)
        expected: Expected = OK_200
        if stranger:
            expected = (404, "not_found")
        elif c.status != "pending" or (
            c.hold_expires_at is not None and c.hold_expires_at <= self.clock()
        ):
            expected = (409, "invalid_state")
        response = self.client.post(f"/v1/redemptions/{c.id}/confirm", headers=group.headers)
        body = self._expect("confirm_redemption", response, expected)
        if expected == OK_200:
            assert body["status"] == "captured"
            self.model.vouchers[c.voucher].held -= c.amount
            self.model.payable[(c.supplier, c.programme)] += c.amount
            c.status = "captured"
            self.model.transactions += 1

    def _group(self, c: Claim, stranger: bool) -> Party:
        return next(g for g in self.groups if (g.id == c.group) != stranger)

    @rule(index=pick, stranger=st.sampled_from([False] * 5 + [True]))
    def reject(self, index: int, stranger: bool) -> None:
        c = self._claim(index)
        if c is None:
            return
        group = self._group(c, stranger)
        expected: Expected = OK_200
        if stranger:
            expected = (404, "not_found")
        elif c.status != "pending":
            expected = (409, "invalid_state")
        response = self.client.post(
            f"/v1/redemptions/{c.id}/reject", headers=group.headers, json={"reason": "no show"}
        )
        body = self._expect("reject_redemption", response, expected)
        if expected == OK_200:
            assert body["status"] == "voided"
            self._void(c)

    @rule(index=pick, stranger=st.sampled_from([False] * 5 + [True]))
    def cancel(self, index: int, stranger: bool) -> None:
        c = self._claim(index)
        if c is None:
            return
        supplier = next(s for s in self.suppliers if (s.id == c.supplier) != stranger)
        expected: Expected = OK_200
        if stranger:
            expected = (404, "not_found")
        elif c.status != "pending":
            expected = (409, "invalid_state")
        response = self.client.post(f"/v1/redemptions/{c.id}/cancel", headers=supplier.headers)
        body = self._expect("cancel_redemption", response, expected)
        if expected == OK_200:
            assert body["status"] == "voided"
            self._void(c)

    # --- money back and money out -----------------------------------------------------

    @rule(index=pick, amount=amounts, by_funder=st.booleans())
    def refund(self, index: int, amount: int, by_funder: bool) -> None:
        c = self._claim(index)
        if c is None:
            return
        refundable = c.amount - c.refunded
        amount = amount or max(refundable, 1)
        expected: Expected = OK_201
        if c.status != "captured":
            expected = (409, "invalid_state")
        elif c.settled:
            expected = (409, "already_settled")
        elif c.settlement is not None:
            expected = (409, "settlement_pending")
        elif amount > refundable:
            expected = (409, "insufficient_funds")
        party = self.funder if by_funder else self.parties[c.supplier]
        response = self.client.post(
            f"/v1/redemptions/{c.id}/refunds",
            headers=party.headers,
            json={"amount": amount, "reason": "partly undelivered"},
        )
        body = self._expect("refund_redemption", response, expected)
        if expected == OK_201:
            c.refunded += amount
            assert body["refunded_amount"] == c.refunded
            self.model.payable[(c.supplier, c.programme)] -= amount
            self._return(self.model.vouchers[c.voucher], amount)
            self.model.transactions += 1

    def _actor_ref(self, actor: Party | Person) -> str:
        if isinstance(actor, Person):
            return actor.id
        return actor.key.removeprefix("vl_").rpartition("_")[0]

    def _awaiting(self, supplier_id: str, programme: str) -> int:
        return sum(
            s.amount
            for s in self.model.settlements.values()
            if (s.supplier, s.programme, s.status) == (supplier_id, programme, "proposed")
        )

    @rule(index=pick, actor_index=st.sampled_from([0, 0, 1, 2, 3, 5]))
    def settle(self, index: int, actor_index: int) -> None:
        """Pay (or, in the two-person programme, propose to pay) a supplier in a
        programme: one where it is accredited, or the one where supplier 1 never was."""
        m = self.model
        pairs = [*m.payable, (self.suppliers[1].id, list(m.programmes)[1])]
        supplier_id, programme = pairs[index % len(pairs)]
        supplier = self.parties[supplier_id]
        role, actor = self.actors[actor_index]
        owed = m.payable.get((supplier.id, programme))
        free = None if owed is None else owed - self._awaiting(supplier.id, programme)
        expected: Expected = OK_201
        if role == "viewer":
            expected = (403, "forbidden")
        elif free is None:
            expected = (422, "validation_error")  # never accredited there
        elif free == 0:
            expected = (409, "nothing_to_settle")
        response = self.client.post(
            f"/v1/programmes/{programme}/settlements",
            headers=actor.headers,
            json={"supplier_id": supplier.id, "payout_reference": "wire"},
        )
        body = self._expect("create_settlement", response, expected)
        if expected != OK_201 or free is None:
            return
        covered = sorted(
            c.id
            for c in m.claims.values()
            if (c.programme, c.supplier, c.status) == (programme, supplier.id, "captured")
            and c.settlement is None
            and c.refunded < c.amount
        )
        assert (body["amount"], body["redemption_ids"]) == (free, covered)
        two_person = m.programmes[programme].two_person
        assert body["status"] == ("proposed" if two_person else "settled")
        assert body["proposed_by"] == self._actor_ref(actor)
        made = Settlement(
            body["id"], programme, supplier.id, free, covered, "proposed", body["proposed_by"]
        )
        m.settlements[made.id] = made
        for claim_id in covered:
            m.claims[claim_id].settlement = made.id
        if not two_person:
            self._paid(made, made.proposed_by)

    def _paid(self, s: Settlement, approver: str) -> None:
        m = self.model
        s.status, s.approved_by = "settled", approver
        for claim_id in s.claims:
            m.claims[claim_id].settled = True
        m.payable[(s.supplier, s.programme)] -= s.amount
        m.paid[s.supplier] = m.paid.get(s.supplier, 0) + s.amount
        m.transactions += 1

    def _settlement(self, index: int) -> Settlement | None:
        if not self.model.settlements:
            return None
        return list(self.model.settlements.values())[index % len(self.model.settlements)]

    @rule(
        index=pick,
        proposer=st.sampled_from([0, 1, 2, 3]),
        decider=st.sampled_from([0, 1, 2, 2, 3, 3, 4, 5]),
        approving=st.sampled_from([True, True, False]),
    )
    def propose_then_decide(self, index: int, proposer: int, decider: int, approving: bool) -> None:
        """A proposal in the two-person programme, then a decision on the newest
        settlement: likelier to reach approvals and rejections than the rules alone."""
        m = self.model
        vouchers = list(m.vouchers.values())
        live = [
            i
            for i, v in enumerate(vouchers)
            if m.programmes[v.programme].two_person and v.balance > 0 and not self._ended(v)
        ]
        if live:  # something captured to propose
            self.claim(live[index % len(live)], index % 2, 1 + index % 300, "leadership", False)
        pairs = [pair for pair in m.payable if m.programmes[pair[1]].two_person]
        self.settle(list(m.payable).index(pairs[index % len(pairs)]), proposer)
        newest = len(m.settlements) - 1
        if approving:
            self.approve(newest, decider)
        else:
            self.reject_settlement(newest, decider)

    @rule(index=pick, actor_index=st.sampled_from([0, 1, 2, 2, 3, 3, 4, 5]))
    def approve(self, index: int, actor_index: int) -> None:
        s = self._settlement(index)
        if s is None:
            return
        role, actor = self.actors[actor_index]
        ref = self._actor_ref(actor)
        expected: Expected = OK_200
        if role in ("viewer", "operator"):
            expected = (403, "forbidden")
        elif role == "key":
            expected = (403, "second_person_required")
        elif role == "no totp":
            expected = (403, "totp_setup_required")
        elif s.status != "proposed":
            expected = (409, "invalid_state")
        elif s.proposed_by == ref:
            expected = (403, "second_person_required")
        response = self.client.post(f"/v1/settlements/{s.id}/approve", headers=actor.headers)
        body = self._expect("approve_settlement", response, expected)
        if expected == OK_200:
            self._paid(s, ref)
            assert (body["status"], body["approved_by"], body["amount"]) == (
                "settled",
                ref,
                s.amount,
            )

    @rule(index=pick, actor_index=st.integers(0, 5))
    def reject_settlement(self, index: int, actor_index: int) -> None:
        s = self._settlement(index)
        if s is None:
            return
        role, actor = self.actors[actor_index]
        expected: Expected = OK_200
        if role in ("viewer", "operator"):
            expected = (403, "forbidden")
        elif s.status != "proposed":
            expected = (409, "invalid_state")
        response = self.client.post(
            f"/v1/settlements/{s.id}/reject", headers=actor.headers, json={"reason": "no"}
        )
        body = self._expect("reject_settlement", response, expected)
        if expected == OK_200:
            s.status = "rejected"
            for claim_id in s.claims:
                self.model.claims[claim_id].settlement = None
            assert (body["status"], body["redemption_ids"]) == ("rejected", s.claims)

    @rule(index=pick, rating=st.integers(1, 5))
    def feedback(self, index: int, rating: int) -> None:
        c = self._claim(index)
        if c is None:
            return
        expected: Expected = OK_201
        if c.status != "captured" or c.feedback:
            expected = (409, "invalid_state")
        response = self.client.post(
            f"/v1/redemptions/{c.id}/feedback",
            headers=self.parties[c.group].headers,
            json={"rating": rating, "outcome": "Useful", "outcome_kind": "product"},
        )
        self._expect("create_feedback", response, expected)
        if expected == OK_201:
            c.feedback = True

    # --- vouchers, accreditation, time ------------------------------------------------

    @rule(index=pick, really=st.sampled_from([False] * 3 + [True]))
    def revoke(self, index: int, really: bool) -> None:
        """Now and then (a revoked voucher is of no more use to the other rules)."""
        if not really:
            return
        v = list(self.model.vouchers.values())[index % len(self.model.vouchers)]
        expected: Expected = OK_200
        if v.status in ("revoked", "expired"):
            expected = (409, "invalid_state")
        response = self.client.post(
            f"/v1/vouchers/{v.id}/revoke", headers=self.funder.headers, json={"reason": "fraud"}
        )
        self._expect("revoke_voucher", response, expected)
        if expected == OK_200:
            if v.balance:
                self.model.programmes[v.programme].unissued += v.balance
                self.model.transactions += 1
            v.balance, v.status = 0, "revoked"

    @rule(index=pick)
    def toggle_accreditation(self, index: int) -> None:
        """Suspend an active accreditation, or accredit a suspended one again."""
        (supplier_id, programme), accreditation = list(self.model.accreditations.items())[
            index % len(self.model.accreditations)
        ]
        if accreditation.active:
            response = self.client.delete(
                f"/v1/programmes/{programme}/accreditations/{supplier_id}",
                headers=self.funder.headers,
            )
            assert response.status_code == 204, response.text
        else:
            accredit(
                self.client, self.funder, programme, supplier_id, sorted(accreditation.categories)
            )
        accreditation.active = not accreditation.active

    @rule(programme_index=st.integers(0, 2))
    def sweep(self, programme_index: int) -> None:
        m = self.model
        programme = list(m.programmes)[programme_index]
        now = self.clock()
        lapsed = sorted(
            (c for c in m.claims.values() if c.programme == programme and c.status == "pending"),
            key=lambda c: c.id,
        )
        lapsed = [c for c in lapsed if c.hold_expires_at is not None and c.hold_expires_at <= now]
        for c in lapsed:
            self._void(c)
        expired = [
            v
            for v in m.vouchers.values()
            if v.programme == programme
            and v.status in ("active", "exhausted")
            and v.expires_at <= now
        ]
        returned = 0
        for v in expired:
            returned += v.balance
            m.programmes[programme].unissued += v.balance
            m.transactions += 1 if v.balance else 0
            v.balance, v.status = 0, "expired"
        response = self.client.post(
            f"/v1/programmes/{programme}/sweep", headers=self.funder.headers
        )
        body = self._expect("sweep_programme", response, OK_200)
        assert body == {
            "expired_vouchers": len(expired),
            "returned_amount": returned,
            "released_holds": len(lapsed),
            "released_amount": sum(c.amount for c in lapsed),
        }

    @rule(hours=st.sampled_from([1, 6, 24, 47, 49]))
    def advance_clock(self, hours: int) -> None:
        self.clock.now += timedelta(hours=hours)

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def api_and_ledger_agree_with_the_model(self) -> None:
        m = self.model
        client = self.client
        shown = {
            v["id"]: (v["balance"], v["held"], v["status"])
            for v in list_all(client, self.funder.headers, "/v1/vouchers")
        }
        # A voucher past its expiry reads as expired before the sweep (its balance
        # stays on the ledger until then).
        assert shown == {
            v.id: (
                v.balance,
                v.held,
                "expired"
                if v.status in ("active", "exhausted") and v.expires_at <= self.clock()
                else v.status,
            )
            for v in m.vouchers.values()
        }
        assert all(balance >= 0 and held >= 0 for balance, held, _ in shown.values())

        claims = {
            r["id"]: (r["status"], r["refunded_amount"], r["settled"])
            for r in list_all(client, self.funder.headers, "/v1/redemptions")
        }
        assert claims == {c.id: (c.status, c.refunded, c.settled) for c in m.claims.values()}

        settlements = {
            s["id"]: (s["status"], s["amount"], s["redemption_ids"], s["approved_by"])
            for s in list_all(client, self.funder.headers, "/v1/settlements")
        }
        assert settlements == {
            s.id: (s.status, s.amount, s.claims, s.approved_by) for s in m.settlements.values()
        }

        for programme in list_all(client, self.funder.headers, "/v1/programmes"):
            found = programme["balances"]
            assert found["deposited"] == sum(found[part] for part in BALANCE_PARTS), found
            p = m.programmes[programme["id"]]
            vouchers = [v for v in m.vouchers.values() if v.programme == p.id]
            payable = sum(owed for (_, pid), owed in m.payable.items() if pid == p.id)
            assert (
                found["deposited"],
                found["unissued"],
                found["outstanding"],
                found["held"],
                found["payable"],
            ) == (
                p.deposited,
                p.unissued,
                sum(v.balance for v in vouchers),
                sum(v.held for v in vouchers),
                payable,
            )

        with session_factory(client)() as session:
            in_ledger = account_balances(session)
            counts = journal_counts(session)
            problems = ledger_violations(session)
        for v in m.vouchers.values():
            assert (in_ledger[chart.voucher(v.id)], in_ledger[chart.held(v.id)]) == (
                v.balance,
                v.held,
            )
        for (supplier_id, programme_id), owed in m.payable.items():
            assert in_ledger[chart.payable(supplier_id, programme_id)] == owed
        for supplier in self.suppliers:
            paid = in_ledger.get(chart.paid(supplier.id, "EUR"), 0)
            assert paid == m.paid.get(supplier.id, 0)
        assert counts["ledger_transactions"] == m.transactions
        assert problems == []


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    clock = FrozenClock()
    for module in CLOCKED_MODULES:
        monkeypatch.setattr(f"{module}.utcnow", clock)
    return clock


@pytest.mark.slow
def test_random_claims_keep_the_books(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, frozen_clock: FrozenClock
) -> None:
    def new_settings() -> Settings:
        return Settings(
            database_url=fresh_database(backend, request, tmp_path),
            signing_key=TEST_SIGNING_KEY,
            signing_key_file=tmp_path / "unused-key",
            sealer_enabled=False,
            sweep_enabled=False,  # tests sweep when they mean to
            pool_size=2,
            log_level="WARNING",
        )

    def drop_database(url: str) -> None:
        if backend == "postgresql":
            drop_postgres_database(url.rsplit("/", 1)[1])
        else:
            Path(url.removeprefix("sqlite:///")).unlink()

    machine = type(
        "ClaimsMachineOn" + backend.title(),
        (ClaimsMachine,),
        {
            "new_settings": staticmethod(new_settings),
            "drop_database": staticmethod(drop_database),
            "clock": frozen_clock,
        },
    )
    run_state_machine_as_test(
        machine,
        # ci: 20 examples of 25 steps, a database and an app each.
        settings=machine_settings(examples=0.2, steps=25 / 30),
    )
