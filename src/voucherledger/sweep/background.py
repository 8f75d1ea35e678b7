"""The sweep in the background: time that passes by itself.

Each server process runs a :class:`BackgroundSweeper` thread (``sweep_enabled``,
every ``sweep_interval_seconds``). A pass first takes the ``sweep`` lease (a row of
``leases``, see ``sweep/models.py``): of all processes on all nodes, only the holder
does the work, and it renews the lease as it goes; when the holder stops or dies, its
lease ends (at once, or after ``lease_seconds``) and another process takes over. A
pass does what nobody should have to run by hand:

- every programme is swept as ``voucherledger sweep`` does (vouchers past
  ``expires_at`` expired, holds past ``hold_expires_at`` released), one programme per
  transaction, under the programme's row lock — so even two overlapping passes
  (a lease that ran out mid-pass, a cron job) cannot do one programme's work twice;
- Idempotency-Key records older than ``idempotency_retention_hours`` are purged;
- failed voucher-code look-ups that have left the limiter's window are purged;
- failed sign-ins older than a day (past the longest sign-in limiter window), and
  browser sessions that expired more than a day ago, are purged;
- events (``GET /v1/events``) older than ``events_retention_days`` are purged — never
  the ledger, whose tables no purge touches.

Purges go in batches of ``PURGE_BATCH`` rows, each batch its own transaction.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session, sessionmaker

from voucherledger.core import events, idempotency
from voucherledger.core.db import transaction, utcnow
from voucherledger.people import limiter as signin_limiter
from voucherledger.people import session_repository as sessions_repo
from voucherledger.programmes import repository as programmes_repo
from voucherledger.redemptions import repository as redemptions_repo
from voucherledger.sweep import repository
from voucherledger.sweep.service import sweep_all

log = structlog.get_logger("voucherledger.sweep")

LEASE_NAME = "sweep"
PURGE_BATCH = 1000
# Failed look-ups are only counted for 60 s; they are kept a little longer so that a
# support question about a 429 can still be answered from the table.
CODE_FAILURE_RETENTION = timedelta(minutes=10)
# An ended session is kept a day, for a question about it; then it goes.
SESSION_RETENTION = timedelta(days=1)


def new_holder() -> str:
    """A name for one running process's claim on a lease: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseHolder:
    """One process's hold on a named lease; each call commits a transaction of its own."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        name: str,
        *,
        holder: str,
        seconds: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.name = name
        self.holder = holder
        self.seconds = seconds
        self._factory = factory
        self._clock = clock

    def take(self) -> bool:
        """Take the lease, or renew it if held already; False while another holds it."""
        now = self._clock()
        with transaction(self._factory) as session:
            return repository.take_lease(
                session, self.name, self.holder, now, now + timedelta(seconds=self.seconds)
            )

    def give_up(self) -> None:
        with transaction(self._factory) as session:
            repository.give_up_lease(session, self.name, self.holder, self._clock())


@dataclass(frozen=True, slots=True)
class Housekeeping:
    """What one pass did."""

    programmes: int
    expired_vouchers: int
    released_holds: int
    purged_idempotency_records: int
    purged_code_failures: int
    purged_signin_failures: int = 0
    purged_sessions: int = 0
    purged_events: int = 0


def _purge(
    factory: sessionmaker[Session],
    lease: LeaseHolder,
    purge: Callable[[Session, datetime, int], int],
    before: datetime,
) -> int:
    total = 0
    while lease.take():
        with transaction(factory) as session:
            count = purge(session, before, PURGE_BATCH)
        total += count
        if count < PURGE_BATCH:
            break
    return total


def housekeep(
    factory: sessionmaker[Session],
    lease: LeaseHolder,
    *,
    idempotency_retention: timedelta,
    events_retention: timedelta = timedelta(days=30),
    clock: Callable[[], datetime] = utcnow,
) -> Housekeeping | None:
    """One pass, if ``lease`` can be taken; None when another process holds it. Stops
    early (keeping what it committed) if the lease is lost half-way."""
    if not lease.take():
        return None
    with factory() as session:
        ids = programmes_repo.ids(session)
    swept = expired = released = 0
    for programme_id in ids:
        if not lease.take():
            log.warning("sweep_lease_lost", holder=lease.holder)
            break
        for _programme_id, result in sweep_all(factory, [programme_id]):
            swept += 1
            expired += result.expired_vouchers
            released += result.released_holds
    now = clock()
    purged_keys = _purge(factory, lease, idempotency.purge_records, now - idempotency_retention)
    purged_failures = _purge(
        factory, lease, redemptions_repo.purge_code_failures, now - CODE_FAILURE_RETENTION
    )
    purged_signins = _purge(
        factory, lease, signin_limiter.purge_failures, now - signin_limiter.RETENTION
    )
    purged_sessions = _purge(factory, lease, sessions_repo.purge_sessions, now - SESSION_RETENTION)
    purged_events = _purge(factory, lease, events.purge_events, now - events_retention)
    return Housekeeping(
        swept,
        expired,
        released,
        purged_keys,
        purged_failures,
        purged_signins,
        purged_sessions,
        purged_events,
    )


class BackgroundSweeper:
    """Runs :func:`housekeep` at start and then about every ``interval`` seconds in a
    daemon thread; gives the lease up when stopped, so another process takes over."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        interval: float,
        idempotency_retention_hours: int,
        events_retention_days: int = 30,
    ) -> None:
        self._factory = factory
        self._interval = interval
        self._retention = timedelta(hours=idempotency_retention_hours)
        self._events_retention = timedelta(days=events_retention_days)
        # Long enough to survive a slow pass or two; short enough that a dead holder's
        # work is picked up within a few intervals.
        self.lease = LeaseHolder(
            factory, LEASE_NAME, holder=new_holder(), seconds=max(30.0, 3 * interval)
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voucherledger-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.lease.give_up()
        except Exception:  # the lease then simply runs out
            log.exception("sweep_lease_not_given_up")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = housekeep(
                    self._factory,
                    self.lease,
                    idempotency_retention=self._retention,
                    events_retention=self._events_retention,
                )
                if done is not None and (done.expired_vouchers or done.released_holds):
                    log.info(
                        "swept",
                        expired_vouchers=done.expired_vouchers,
                        released_holds=done.released_holds,
                    )
            except Exception:  # keep sweeping after a transient database error
                log.exception("sweep_failed")
            self._stop.wait(self._interval)
