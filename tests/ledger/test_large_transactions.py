"""Transactions with many postings (a batch issuance) keep every guarantee."""

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import SIGNER, ledger_violations, open_chart
from voucherledger import ledger
from voucherledger.core.db import transaction
from voucherledger.ledger.sealer import seal_pending
from voucherledger.ledger.verify import verify_database

VOUCHERS = [f"voucher:v{i:03d}" for i in range(60)]


def _issue_all(
    factory: sessionmaker[Session], amount: int, key: str | None = None
) -> ledger.Posted:
    with transaction(factory) as session:
        return ledger.post(
            session,
            kind="issue",
            idempotency_key=key,
            legs=[ledger.Leg("budget", -amount * len(VOUCHERS), "EUR")]
            + [ledger.Leg(code, amount, "EUR") for code in VOUCHERS],
        )


@pytest.fixture
def funded(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    open_chart(session_factory, ["budget", *VOUCHERS])
    with transaction(session_factory) as session:
        ledger.post(
            session,
            kind="deposit",
            legs=[ledger.Leg("funder:f1", -10_000, "EUR"), ledger.Leg("budget", 10_000, "EUR")],
        )
    return session_factory


def test_a_sixty_voucher_issue_moves_every_amount_once(funded: sessionmaker[Session]) -> None:
    first = _issue_all(funded, 100, key="batch-1")
    again = _issue_all(funded, 100, key="batch-1")
    assert again.replayed
    assert again.transaction_id == first.transaction_id
    with funded() as session:
        assert ledger.balance(session, "budget") == 10_000 - 6_000
        assert set(ledger.balances(session, VOUCHERS).values()) == {100}
        assert ledger_violations(session) == []
    assert seal_pending(funded, SIGNER) == 2  # the deposit and the one issue
    with funded() as session:
        assert verify_database(session, public_key=SIGNER.public_key_hex).ok


def test_a_large_issue_beyond_the_budget_writes_nothing(funded: sessionmaker[Session]) -> None:
    with pytest.raises(ledger.InsufficientFunds) as refused:
        _issue_all(funded, 200)  # 12,000 of a 10,000 budget
    assert refused.value.account == "budget"
    with funded() as session:
        assert ledger.balance(session, "budget") == 10_000
        assert set(ledger.balances(session, VOUCHERS).values()) == {0}


def test_a_large_transaction_to_an_unknown_account_names_it(
    funded: sessionmaker[Session],
) -> None:
    legs = [ledger.Leg("budget", -1_000, "EUR")] + [
        ledger.Leg(code, 100, "EUR") for code in [*VOUCHERS[:9], "voucher:nobody"]
    ]
    with pytest.raises(ledger.UnknownAccount) as refused, transaction(funded) as session:
        ledger.post(session, kind="issue", legs=legs)
    assert refused.value.account == "voucher:nobody"
