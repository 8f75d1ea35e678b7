"""The ledger's guarantees as the invariants of a random sequence of operations.

A hypothesis state machine runs deposits, issues, holds, captures, voids,
refunds, settlements, overdraft attempts and retried idempotency keys through
``ledger.post`` — each in its own committed database transaction, on a fresh
database per example — and keeps a model of every balance. After every step the
database must agree with the model and with the guarantees: each transaction
balances per currency, each balance row is the sum of its postings, nothing
that may not go negative is negative, the trial balance sums to zero, and a
refusal or a replay wrote nothing. Now and then it seals and verifies the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from tests.conftest import drop_postgres_database, fresh_database, machine_settings
from tests.factories.ledger import (
    SIGNER,
    account_balances,
    journal_counts,
    ledger_violations,
)
from voucherledger import ledger
from voucherledger.core.db import create_db_engine, create_session_factory, transaction
from voucherledger.ledger.models import TransactionKind
from voucherledger.ledger.sealer import seal_pending
from voucherledger.ledger.verify import verify_database

FUNDER = "funder:f1"
BUDGET = "programme:p1:unissued"
PAYABLE = "supplier:s1:payable:p1"
PAID = "supplier:s1:paid"
VOUCHERS = ("voucher:v1", "voucher:v2", "voucher:v3")
# A second currency, so "sums to zero per currency" has more than one currency to hold in.
USD_FUNDER = "funder:f2"
USD_BUDGET = "programme:p2:unissued"

NON_NEGATIVE = (BUDGET, PAYABLE, PAID, USD_BUDGET, *VOUCHERS, *(f"{v}:held" for v in VOUCHERS))

vouchers = st.sampled_from(VOUCHERS)
percent = st.integers(min_value=1, max_value=100)
keyed = st.booleans()


def currency_of(account: str) -> str:
    return "USD" if account in (USD_FUNDER, USD_BUDGET) else "EUR"


@dataclass(frozen=True)
class Done:
    """A committed transaction that carried an idempotency key."""

    key: str
    kind: TransactionKind
    legs: tuple[ledger.Leg, ...]
    transaction_id: str


Added = Done | MultipleResults[Done]  # what a rule adds to the ``done`` bundle


class LedgerMachine(RuleBasedStateMachine):
    """Set ``new_database`` (a callable returning a fresh migrated database URL)
    and ``drop_database`` on a subclass before running."""

    new_database: Callable[[], str]
    drop_database: Callable[[str], None]

    done = Bundle("done")

    def __init__(self) -> None:
        super().__init__()
        self.url = type(self).new_database()
        self.engine = create_db_engine(self.url, pool_size=2)
        self.factory = create_session_factory(self.engine)
        with transaction(self.factory) as session:
            ledger.open_accounts(
                session,
                [(FUNDER, "EUR", True), (USD_FUNDER, "USD", True)]
                + [(code, currency_of(code), False) for code in NON_NEGATIVE],
            )
        self.model: dict[str, int] = dict.fromkeys((FUNDER, USD_FUNDER, *NON_NEGATIVE), 0)
        self.committed = 0
        self.sealed = 0
        self.keys = 0
        # Start with money in the budgets and the vouchers, so that the first steps
        # already move value rather than mostly being refused for want of it.
        self._move(
            "deposit",
            [ledger.Leg(FUNDER, -1_000_000, "EUR"), ledger.Leg(BUDGET, 1_000_000, "EUR")],
            None,
        )
        self._move(
            "deposit",
            [ledger.Leg(USD_FUNDER, -50_000, "USD"), ledger.Leg(USD_BUDGET, 50_000, "USD")],
            None,
        )
        self._move(
            "issue",
            [ledger.Leg(BUDGET, -30_000, "EUR")]
            + [ledger.Leg(voucher, 10_000, "EUR") for voucher in VOUCHERS],
            None,
        )
        for voucher in VOUCHERS:
            self._move(
                "hold",
                [ledger.Leg(voucher, -4_000, "EUR"), ledger.Leg(f"{voucher}:held", 4_000, "EUR")],
                None,
            )
        self._move(
            "capture",
            [ledger.Leg(f"{VOUCHERS[0]}:held", -2_000, "EUR"), ledger.Leg(PAYABLE, 2_000, "EUR")],
            None,
        )

    def teardown(self) -> None:
        self.engine.dispose()
        type(self).drop_database(self.url)

    # --- helpers ---------------------------------------------------------------

    def _key(self, use: bool) -> str | None:
        if not use:
            return None
        self.keys += 1
        return f"key-{self.keys}"

    def _snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self.factory() as session:
            return journal_counts(session), account_balances(session)

    def _post(
        self, kind: TransactionKind, legs: list[ledger.Leg], key: str | None
    ) -> ledger.Posted:
        with transaction(self.factory) as session:
            return ledger.post(
                session,
                kind=kind,
                legs=legs,
                idempotency_key=key,
                memo=f"{kind} {len(legs)} legs",
                metadata={"step": self.keys},
            )

    def _move(self, kind: TransactionKind, legs: list[ledger.Leg], key: str | None) -> Added:
        """Post; succeed exactly when the model says every account can afford it."""
        after = dict(self.model)
        for leg in legs:
            after[leg.account] += leg.amount
        affordable = all(after[code] >= 0 for code in NON_NEGATIVE)
        if not affordable:
            self._refused(kind, legs, key, ledger.InsufficientFunds)
            return multiple()
        posted = self._post(kind, legs, key)
        assert not posted.replayed
        self.model = after
        self.committed += 1
        if key is None:
            return multiple()
        return Done(key, kind, tuple(legs), posted.transaction_id)

    def _refused(
        self,
        kind: TransactionKind,
        legs: list[ledger.Leg],
        key: str | None,
        error: type[ledger.LedgerError],
    ) -> None:
        before = self._snapshot()
        with pytest.raises(error):
            self._post(kind, legs, key)
        assert self._snapshot() == before, f"a refused {kind} wrote something"

    def _transfer(
        self, kind: TransactionKind, source: str, target: str, share: int, key: str | None
    ) -> Added:
        # A share of what the source holds; 1 when it holds nothing — an overdraft.
        amount = max(1, self.model[source] * share // 100)
        currency = currency_of(source)
        return self._move(
            kind, [ledger.Leg(source, -amount, currency), ledger.Leg(target, amount, currency)], key
        )

    # --- operations ------------------------------------------------------------

    @rule(
        target=done,
        amount=st.integers(min_value=1, max_value=1_000_000),
        use_key=keyed,
        usd=st.booleans(),
    )
    def deposit(self, amount: int, use_key: bool, usd: bool) -> Added:
        funder, budget = (USD_FUNDER, USD_BUDGET) if usd else (FUNDER, BUDGET)
        currency = currency_of(funder)
        return self._move(
            "deposit",
            [ledger.Leg(funder, -amount, currency), ledger.Leg(budget, amount, currency)],
            self._key(use_key),
        )

    @rule(target=done, voucher=vouchers, share=percent, use_key=keyed)
    def issue(self, voucher: str, share: int, use_key: bool) -> Added:
        return self._transfer("issue", BUDGET, voucher, share, self._key(use_key))

    @rule(target=done, share=percent, use_key=keyed)
    def issue_to_every_voucher(self, share: int, use_key: bool) -> Added:
        """One transaction with several legs: the budget split over all vouchers."""
        each = max(1, self.model[BUDGET] * share // 100 // len(VOUCHERS))
        legs = [ledger.Leg(BUDGET, -each * len(VOUCHERS), "EUR")]
        legs += [ledger.Leg(voucher, each, "EUR") for voucher in VOUCHERS]
        return self._move("issue", legs, self._key(use_key))

    @rule(target=done, voucher=vouchers, share=percent, use_key=keyed)
    def hold(self, voucher: str, share: int, use_key: bool) -> Added:
        return self._transfer("hold", voucher, f"{voucher}:held", share, self._key(use_key))

    @rule(target=done, voucher=vouchers, share=percent, use_key=keyed)
    def capture(self, voucher: str, share: int, use_key: bool) -> Added:
        return self._transfer("capture", f"{voucher}:held", PAYABLE, share, self._key(use_key))

    @rule(target=done, voucher=vouchers, share=percent, use_key=keyed)
    def void(self, voucher: str, share: int, use_key: bool) -> Added:
        return self._transfer("void", f"{voucher}:held", voucher, share, self._key(use_key))

    @rule(target=done, voucher=vouchers, share=percent, use_key=keyed)
    def refund(self, voucher: str, share: int, use_key: bool) -> Added:
        return self._transfer("refund", PAYABLE, voucher, share, self._key(use_key))

    @rule(target=done, share=percent, use_key=keyed)
    def settle(self, share: int, use_key: bool) -> Added:
        return self._transfer("settle", PAYABLE, PAID, share, self._key(use_key))

    @rule(
        source=st.sampled_from(NON_NEGATIVE),
        to=st.sampled_from(NON_NEGATIVE),
        extra=st.integers(min_value=1, max_value=1_000),
        use_key=keyed,
    )
    def overdraft(self, source: str, to: str, extra: int, use_key: bool) -> None:
        """More than the source holds: refused, whichever account sorts first."""
        target = to
        if source == target or currency_of(source) != currency_of(target):
            target = FUNDER if currency_of(source) == "EUR" else USD_FUNDER
        amount = self.model[source] + extra
        currency = currency_of(source)
        self._refused(
            "transfer",
            [ledger.Leg(source, -amount, currency), ledger.Leg(target, amount, currency)],
            self._key(use_key),
            ledger.InsufficientFunds,
        )

    @rule(previous=done)
    def retry_same(self, previous: Done) -> None:
        before = self._snapshot()
        posted = self._post(previous.kind, list(reversed(previous.legs)), previous.key)
        assert posted.replayed
        assert posted.transaction_id == previous.transaction_id
        assert self._snapshot() == before, "a replay wrote something"

    @rule(previous=done, extra=st.integers(min_value=1, max_value=50))
    def retry_different(self, previous: Done, extra: int) -> None:
        first, second, *rest = previous.legs
        legs = [
            ledger.Leg(first.account, first.amount - extra, first.currency),
            ledger.Leg(second.account, second.amount + extra, second.currency),
            *rest,
        ]
        self._refused(previous.kind, legs, previous.key, ledger.IdempotencyConflict)

    @rule(previous=done)
    def retry_with_another_kind(self, previous: Done) -> None:
        other: TransactionKind = "transfer" if previous.kind != "transfer" else "deposit"
        self._refused(other, list(previous.legs), previous.key, ledger.IdempotencyConflict)

    @rule()
    def seal_and_verify(self) -> None:
        pending = self.committed - self.sealed
        assert seal_pending(self.factory, SIGNER, batch_size=7) == pending
        self.sealed = self.committed
        with self.factory() as session:
            result = verify_database(session, public_key=SIGNER.public_key_hex)
            queued = session.execute(text("SELECT count(*) FROM ledger_seal_queue")).scalar()
        assert result.ok, result.error
        assert result.count == self.committed
        assert queued == 0

    # --- invariants ------------------------------------------------------------

    @invariant()
    def guarantees_hold(self) -> None:
        with self.factory() as session:
            assert ledger_violations(session) == []
            counts = journal_counts(session)
            assert account_balances(session) == self.model
        assert counts["ledger_transactions"] == self.committed
        assert counts["ledger_seal_queue"] == self.committed - self.sealed
        assert counts["ledger_seals"] == self.sealed


@pytest.mark.slow
def test_random_operations_keep_the_ledger_sound(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    def new_database() -> str:
        return fresh_database(backend, request, tmp_path)

    def drop_database(url: str) -> None:
        if backend == "postgresql":
            drop_postgres_database(url.rsplit("/", 1)[1])
        else:
            Path(url.removeprefix("sqlite:///")).unlink()

    machine = type(
        "LedgerMachineOn" + backend.title(),
        (LedgerMachine,),
        {
            "new_database": staticmethod(new_database),
            "drop_database": staticmethod(drop_database),
        },
    )
    run_state_machine_as_test(
        machine,
        # ci: 30 examples of 30 steps, a database each.
        settings=machine_settings(examples=0.3),
    )
