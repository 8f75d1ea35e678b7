"""The ledger told as a bookkeeping story."""

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import SIGNER, open_chart, transfer
from voucherledger import ledger
from voucherledger.core.db import transaction
from voucherledger.ledger.sealer import seal_pending
from voucherledger.ledger.verify import verify_database


def test_a_deposit_issue_and_claim_story(session_factory: sessionmaker[Session]) -> None:
    open_chart(
        session_factory,
        ["programme:p1:unissued", "voucher:v1", "voucher:v1:held", "supplier:s1:payable:p1"],
    )
    transfer(session_factory, "funder:f1", "programme:p1:unissued", 100_000, kind="deposit")
    transfer(session_factory, "programme:p1:unissued", "voucher:v1", 30_000, kind="issue")
    transfer(session_factory, "voucher:v1", "voucher:v1:held", 12_000, kind="hold")
    transfer(session_factory, "voucher:v1:held", "supplier:s1:payable:p1", 12_000, kind="capture")

    with session_factory() as session:
        assert ledger.balances(
            session,
            [
                "funder:f1",
                "programme:p1:unissued",
                "voucher:v1",
                "voucher:v1:held",
                "supplier:s1:payable:p1",
            ],
        ) == {
            "funder:f1": -100_000,
            "programme:p1:unissued": 70_000,
            "voucher:v1": 18_000,
            "voucher:v1:held": 0,
            "supplier:s1:payable:p1": 12_000,
        }
        assert ledger.trial_balance(session).totals == {"EUR": 0}

    with pytest.raises(ledger.InsufficientFunds):
        transfer(session_factory, "voucher:v1", "voucher:v1:held", 18_001, kind="hold")

    assert seal_pending(session_factory, SIGNER) == 4
    with session_factory() as session:
        result = verify_database(session, public_key=SIGNER.public_key_hex)
    assert result.ok, result.error
    assert result.count == 4


def test_a_retried_idempotency_key_writes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    open_chart(session_factory, ["programme:p1:unissued"])
    first = transfer(session_factory, "funder:f1", "programme:p1:unissued", 500, key="dep-1")
    again = transfer(session_factory, "funder:f1", "programme:p1:unissued", 500, key="dep-1")
    assert again.replayed
    assert again.transaction_id == first.transaction_id
    with pytest.raises(ledger.IdempotencyConflict):
        transfer(session_factory, "funder:f1", "programme:p1:unissued", 501, key="dep-1")
    with session_factory() as session:
        assert ledger.balance(session, "programme:p1:unissued") == 500


def test_unbalanced_postings_are_refused_before_writing(
    session_factory: sessionmaker[Session],
) -> None:
    open_chart(session_factory, ["a"])
    with pytest.raises(ledger.Unbalanced), transaction(session_factory) as session:
        ledger.post(
            session,
            kind="transfer",
            legs=[ledger.Leg("funder:f1", -5, "EUR"), ledger.Leg("a", 4, "EUR")],
        )
