"""What ``ledger.post`` must refuse before anything is written, with the ledger's own
errors (callers map ``LedgerError`` to a client error; anything else is a 500)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import journal_counts, ledger_violations, open_chart
from voucherledger import ledger
from voucherledger.core.db import transaction
from voucherledger.ledger.models import JournalTransaction

EUR_A, EUR_B, USD_C = "account:a", "account:b", "account:c"


@pytest.fixture
def two_currencies(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    open_chart(session_factory, [EUR_B], external=(EUR_A,))
    open_chart(session_factory, [], currency="USD", external=(USD_C,))
    return session_factory


def _refused(
    factory: sessionmaker[Session], legs: list[ledger.Leg], error: type[ledger.LedgerError]
) -> None:
    with factory() as session:
        before = journal_counts(session)
    with pytest.raises(error), transaction(factory) as session:
        ledger.post(session, kind="transfer", legs=legs)
    with factory() as session:
        assert journal_counts(session) == before
        assert ledger_violations(session) == []


@pytest.mark.parametrize(
    "legs",
    [
        # The posting to account:a in USD is cancelled, in the account's net change, by
        # its EUR posting: the guarded UPDATE never sees the USD leg.
        [
            ledger.Leg(EUR_A, -5, "EUR"),
            ledger.Leg(EUR_B, 5, "EUR"),
            ledger.Leg(EUR_A, 5, "USD"),
            ledger.Leg(USD_C, -5, "USD"),
        ],
        # account:b's last leg is in EUR, so its net change (+8) is applied as EUR.
        [
            ledger.Leg(EUR_B, 3, "USD"),
            ledger.Leg(USD_C, -3, "USD"),
            ledger.Leg(EUR_B, 5, "EUR"),
            ledger.Leg(EUR_A, -5, "EUR"),
        ],
        # Two USD legs on a EUR account that cancel out.
        [ledger.Leg(EUR_A, -5, "USD"), ledger.Leg(EUR_A, 5, "USD")],
    ],
    ids=["nets-to-zero-across-currencies", "last-leg-in-account-currency", "zero-net"],
)
def test_a_posting_in_another_currency_than_its_account_is_refused(
    two_currencies: sessionmaker[Session], legs: list[ledger.Leg]
) -> None:
    _refused(two_currencies, legs, ledger.CurrencyMismatch)


def test_a_posting_in_another_currency_is_refused_in_a_simple_transfer(
    two_currencies: sessionmaker[Session],
) -> None:
    _refused(
        two_currencies,
        [ledger.Leg(EUR_A, -5, "USD"), ledger.Leg(USD_C, 5, "USD")],
        ledger.CurrencyMismatch,
    )


def test_an_overdraft_in_a_multi_leg_transaction_undoes_the_legs_before_it(
    two_currencies: sessionmaker[Session],
) -> None:
    """account:a (may go negative) sorts before account:b and is updated first; the
    refusal on account:b must leave account:a as it was."""
    _refused(
        two_currencies,
        [ledger.Leg(EUR_A, 10, "EUR"), ledger.Leg(EUR_B, -10, "EUR")],
        ledger.InsufficientFunds,
    )


def test_a_posting_to_an_unknown_account_is_refused_as_unknown_account(
    two_currencies: sessionmaker[Session],
) -> None:
    _refused(
        two_currencies,
        [ledger.Leg(EUR_A, -5, "EUR"), ledger.Leg("nobody", 5, "EUR")],
        ledger.UnknownAccount,
    )


@pytest.mark.parametrize(
    ("created_by", "metadata"),
    [
        ("", None),
        ("x" * 41, None),
        ("mem_1", {"created_by": "mem_2"}),  # one source only: the parameter
    ],
    ids=["empty", "too-long", "also-in-metadata"],
)
def test_a_created_by_that_is_not_one_reference_is_refused(
    two_currencies: sessionmaker[Session], created_by: str, metadata: dict[str, str] | None
) -> None:
    with two_currencies() as session:
        before = journal_counts(session)
    with pytest.raises(ledger.InvalidTransaction), transaction(two_currencies) as session:
        ledger.post(
            session,
            kind="transfer",
            legs=[ledger.Leg(EUR_A, -5, "EUR"), ledger.Leg(EUR_B, 5, "EUR")],
            metadata=metadata,
            created_by=created_by,
        )
    with two_currencies() as session:
        assert journal_counts(session) == before


def test_created_by_goes_into_the_metadata_the_chain_covers(
    two_currencies: sessionmaker[Session],
) -> None:
    with transaction(two_currencies) as session:
        posted = ledger.post(
            session,
            kind="transfer",
            legs=[ledger.Leg(EUR_A, -5, "EUR"), ledger.Leg(EUR_B, 5, "EUR")],
            actor="acc_1",
            metadata={"reference": "r"},
            created_by="mem_1",
        )
        plain = ledger.post(
            session,
            kind="transfer",
            legs=[ledger.Leg(EUR_A, -5, "EUR"), ledger.Leg(EUR_B, 5, "EUR")],
        )
    with two_currencies() as session:
        stored = session.get(JournalTransaction, posted.transaction_id)
        unsigned = session.get(JournalTransaction, plain.transaction_id)
        assert stored is not None
        assert unsigned is not None
        assert stored.meta == {"reference": "r", "created_by": "mem_1"}
        assert stored.actor == "acc_1"
        assert unsigned.meta == {}  # without the parameter, nothing is claimed
