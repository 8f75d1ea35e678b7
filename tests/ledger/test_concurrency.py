"""Real concurrency on PostgreSQL: many connections committing at once (guarantee 3, 5).

Every thread has its own session and connection, and a barrier makes them start
together. The only refusal any of them may see is ``InsufficientFunds``: a
deadlock, a serialization failure or any other error escaping ``ledger.post``
fails the test.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import SIGNER, ledger_violations, open_chart, transfer
from voucherledger import ledger
from voucherledger.core.db import create_db_engine, create_session_factory
from voucherledger.ledger.sealer import seal_pending
from voucherledger.ledger.verify import verify_database

THREADS = 32
# Up to THREADS + 2 connections at once (one per thread, and the sealer's): no test in
# the ``pg_connections`` group runs next to another, so a run stays under 60 in all.
pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.slow,
    pytest.mark.xdist_group("pg_connections"),
]


@pytest.fixture
def wide_factory(pg_only: str, db_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory whose pool gives every thread its own connection at once
    (``create_db_engine`` allows as many again as overflow: THREADS + 2 in all)."""
    engine: Engine = create_db_engine(db_url, pool_size=THREADS // 2 + 1)
    yield create_session_factory(engine)
    engine.dispose()


def _run_together(work: Callable[[int], list[int]], threads: int = THREADS) -> list[list[int]]:
    """Run ``work(index)`` in ``threads`` threads released by one barrier; re-raise the
    first exception any of them raised."""
    barrier = threading.Barrier(threads)

    def start(index: int) -> list[int]:
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(start, index) for index in range(threads)]
        return [future.result(timeout=120) for future in futures]


def test_concurrent_spends_never_exceed_the_balance(
    wide_factory: sessionmaker[Session],
) -> None:
    open_chart(wide_factory, ["voucher:v1", "supplier:s1:payable:p1"])
    transfer(wide_factory, "funder:f1", "voucher:v1", 1_000, kind="issue")
    refusals: list[ledger.InsufficientFunds] = []

    def spend(index: int) -> list[int]:
        rng = random.Random(index)
        spent = []
        for _ in range(6):
            amount = rng.randint(1, 100)
            try:
                transfer(
                    wide_factory, "voucher:v1", "supplier:s1:payable:p1", amount, kind="capture"
                )
            except ledger.InsufficientFunds as exc:
                refusals.append(exc)
            else:
                spent.append(amount)
        return spent

    spent = [amount for amounts in _run_together(spend) for amount in amounts]

    assert sum(spent) <= 1_000
    assert refusals, "192 spends of up to 100 from 1,000: some must be refused"
    assert all(exc.account == "voucher:v1" for exc in refusals)
    assert all(exc.balance + exc.change < 0 for exc in refusals)
    with wide_factory() as session:
        assert ledger.balance(session, "voucher:v1") == 1_000 - sum(spent)
        assert ledger.balance(session, "supplier:s1:payable:p1") == sum(spent)
        captures = session.execute(
            text("SELECT count(*) FROM ledger_transactions WHERE kind = 'capture'")
        ).scalar()
        assert captures == len(spent)
        assert ledger_violations(session) == []
    # Nothing is left on the table: what remains is less than the smallest refused spend.
    assert 1_000 - sum(spent) < min(-exc.change for exc in refusals)


def test_transfers_both_ways_between_two_accounts_do_not_deadlock(
    wide_factory: sessionmaker[Session],
) -> None:
    """Half the threads move A -> B, half B -> A; each transaction locks both rows, in
    sorted order, so none waits for the other in a cycle."""
    open_chart(wide_factory, ["account:a", "account:b"])
    transfer(wide_factory, "funder:f1", "account:a", 5_000)
    transfer(wide_factory, "funder:f1", "account:b", 5_000)

    def shuttle(index: int) -> list[int]:
        rng = random.Random(index)
        source, target = ("account:a", "account:b") if index % 2 else ("account:b", "account:a")
        moved = []
        for _ in range(10):
            amount = rng.randint(1, 50)
            try:
                transfer(wide_factory, source, target, amount)
            except ledger.InsufficientFunds:
                continue
            moved.append(amount if source == "account:a" else -amount)
        return moved

    moves = [amount for amounts in _run_together(shuttle) for amount in amounts]

    assert len(moves) > THREADS * 10 // 2
    with wide_factory() as session:
        assert ledger.balances(session, ["account:a", "account:b"]) == {
            "account:a": 5_000 - sum(moves),
            "account:b": 5_000 + sum(moves),
        }
        assert ledger_violations(session) == []


def test_the_sealer_keeps_up_with_concurrent_writers(
    wide_factory: sessionmaker[Session],
) -> None:
    open_chart(wide_factory, ["programme:p1:unissued"])
    writers_done = threading.Event()
    sealed_counts: list[int] = []
    sealer_errors: list[BaseException] = []

    def seal_in_a_loop() -> None:
        try:
            while not writers_done.is_set():
                sealed_counts.append(seal_pending(wide_factory, SIGNER, batch_size=17))
        except BaseException as exc:
            sealer_errors.append(exc)

    def write(index: int) -> list[int]:
        for step in range(8):
            transfer(
                wide_factory,
                "funder:f1",
                "programme:p1:unissued",
                index * 100 + step + 1,
                kind="deposit",
                key=f"deposit-{index}-{step}",
            )
        return []

    sealer = threading.Thread(target=seal_in_a_loop)
    sealer.start()
    try:
        _run_together(write, threads=THREADS - 2)
    finally:
        writers_done.set()
        sealer.join(timeout=60)
    assert not sealer_errors
    sealed_counts.append(seal_pending(wide_factory, SIGNER, batch_size=17))

    written = (THREADS - 2) * 8
    assert sum(sealed_counts) == written
    assert len([count for count in sealed_counts if count]) > 1, "the sealer ran alongside"
    with wide_factory() as session:
        seals = session.execute(
            text(
                "SELECT count(*), count(DISTINCT transaction_id), min(sequence), max(sequence) "
                "FROM ledger_seals"
            )
        ).one()
        assert tuple(seals) == (written, written, 1, written)
        unsealed = session.execute(
            text(
                "SELECT count(*) FROM ledger_transactions t "
                "WHERE NOT EXISTS (SELECT 1 FROM ledger_seals s WHERE s.transaction_id = t.id)"
            )
        ).scalar()
        assert unsealed == 0
        assert session.execute(text("SELECT count(*) FROM ledger_seal_queue")).scalar() == 0
        result = verify_database(session, public_key=SIGNER.public_key_hex)
    assert result.ok, result.error
    assert result.count == written
