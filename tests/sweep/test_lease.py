"""The lease that lets exactly one process (of all processes on all nodes) do the
background sweep: real parallel sessions race for it and commit."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from voucherledger.core.db import utcnow
from voucherledger.sweep.background import LeaseHolder
from voucherledger.sweep.models import Lease

RACERS = 6


def _holders(factory: sessionmaker[Session], now: list[datetime]) -> list[LeaseHolder]:
    return [
        LeaseHolder(factory, "race", holder=f"node-{i}", seconds=30, clock=lambda: now[0])
        for i in range(RACERS)
    ]


def _race(holders: list[LeaseHolder]) -> list[bool]:
    barrier = threading.Barrier(len(holders))
    results: list[bool | None] = [None] * len(holders)

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        results[index] = holders[index].take()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(holders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in results), "a racer did not finish"
    return [bool(r) for r in results]


def _row(factory: sessionmaker[Session]) -> tuple[str, datetime]:
    with factory() as session:
        lease = session.execute(select(Lease).where(Lease.name == "race")).scalar_one()
        return lease.holder, lease.expires_at


def test_one_holder_at_a_time_and_another_takes_over_when_it_expires(
    session_factory: sessionmaker[Session],
) -> None:
    start = utcnow()
    now = [start]
    holders = _holders(session_factory, now)

    # Six processes race for a lease nobody holds: exactly one gets it.
    won = _race(holders)
    assert won.count(True) == 1
    first = holders[won.index(True)]
    assert _row(session_factory) == (first.holder, start + timedelta(seconds=30))

    # While it has not expired, only its holder can take it again (a renewal).
    now[0] = start + timedelta(seconds=20)
    assert _race(holders) == [h is first for h in holders]
    assert _row(session_factory) == (first.holder, start + timedelta(seconds=50))

    # The holder stops renewing (it died); once the lease has run out, exactly one
    # of the others takes over, and the old holder no longer has it.
    now[0] = start + timedelta(seconds=50)
    others = [h for h in holders if h is not first]
    won = _race(others)
    assert won.count(True) == 1
    second = others[won.index(True)]
    assert not first.take()
    assert _row(session_factory)[0] == second.holder


def test_a_lease_given_up_is_free_at_once(session_factory: sessionmaker[Session]) -> None:
    now = [utcnow()]
    first, second, *_ = _holders(session_factory, now)
    assert first.take()
    assert not second.take()
    first.give_up()
    assert second.take()
    assert not first.take()
