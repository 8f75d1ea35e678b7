"""Ledger set-ups for tests: a small chart of accounts and a signer."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_SIGNING_KEY
from voucherledger import ledger
from voucherledger.core.db import transaction
from voucherledger.ledger.signing import Signer

SIGNER = Signer.from_seed(bytes.fromhex(TEST_SIGNING_KEY))


def open_chart(
    factory: sessionmaker[Session], codes: list[str], *, currency: str = "EUR",
    external: tuple[str, ...] = ("funder:f1",),
) -> None:
    """Open ``external`` (may go negative) and ``codes`` (may not) in one transaction."""
    with transaction(factory) as session:
        ledger.open_accounts(
            session,
            [(code, currency, True) for code in external]
            + [(code, currency, False) for code in codes],
        )


def transfer(
    factory: sessionmaker[Session], source: str, target: str, amount: int, *,
    kind: str = "transfer", currency: str = "EUR", key: str | None = None,
) -> ledger.Posted:
    with transaction(factory) as session:
        return ledger.post(
            session, kind=kind, idempotency_key=key,
            legs=[ledger.Leg(source, -amount, currency), ledger.Leg(target, amount, currency)],
        )
