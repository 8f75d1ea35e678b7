"""Slowing down password guessing: after ``limit`` failed sign-ins within ``window``
for one email (folded to lower case), or from one client address, every further
sign-in for that email or from that address answers 429 ``rate_limited`` until the
oldest failure leaves the window. A failure is a wrong email, a wrong password or a
wrong (or replayed) TOTP code; a refused attempt is not counted.

The count lives in the database (``signin_failures``), so every process and node
sees the same count and a restart keeps it; counting is two bounded index range
scans.

**Reserve, then count.** Checking the count and writing the failure only once the
password turned out wrong lets every request that checks before the first failure
is written through: 30 concurrent guesses would all be verified. So each attempt
first *reserves* its row, before the password is verified:

1. in a short transaction of its own, INSERT a row for (email, address) and COMMIT;
2. then, in a new statement, count the rows in the window for the email and for the
   address (the attempt's own row included). Above ``limit`` for either, the attempt
   deletes its row (a refused attempt is not counted) and answers 429;
3. otherwise the password is verified. A wrong one keeps the row: it is the
   failure. A right one deletes it in the request's transaction (it goes with the
   sign-in's commit); an attempt that ends neither way (``totp_required``,
   ``account_required``, an unexpected error) deletes it once the request's
   rolled-back transaction has ended (:func:`voucherledger.core.db.write_after`).

Why at most ``limit`` wrong guesses pass per window, however many arrive at once:
take any ``limit + 1`` wrong guesses for one email that were verified, and the one
among them whose row committed last. Its count ran after its own commit, so every
other of those rows had committed before it and was visible to it (a new statement
in READ COMMITTED on PostgreSQL; SQLite's write lock orders them anyway), and none
of them was deleted (a wrong guess keeps its row). It counted at least
``limit + 1`` and was refused: a contradiction. The same holds per address.

The price is the other way round: rows of attempts not yet decided count too, so
under a burst an attempt may be refused that, alone, would have been within the
limit (even a right password, while others are guessing that email). It never lets
one through past it. An attempt whose request fails after the row was deleted in its
transaction (a lost connection at COMMIT) leaves its row: counted, erring on the
side of the limit.

The two short transactions come before the request's own session starts its
transaction: on SQLite every transaction is ``BEGIN IMMEDIATE`` and holds the write
lock until it ends, so a separate write while the request's one is open would wait
on it (busy_timeout, 30 s).

The client address is ``request.client.host``: behind a reverse proxy, run uvicorn
with ``--proxy-headers`` and ``--forwarded-allow-ips`` so that it is the client's,
not the proxy's (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from voucherledger.core.db import utcnow, write_after
from voucherledger.core.errors import RateLimited
from voucherledger.people.session_models import SigninFailure

# Failures older than this are purged by the sweep: past the longest window allowed.
RETENTION = timedelta(hours=24)


class SigninLimiter:
    def __init__(
        self,
        limit: int = 5,
        window: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock

    def now(self) -> datetime:
        return self._clock() if self._clock is not None else utcnow()

    def reserve(self, session: Session, email_key: str, address: str | None) -> int:
        """Count this attempt as a failure before it is verified; returns its row's id.
        429 ``rate_limited`` (and the row deleted) when that puts the email or the
        address above the limit. Call it before ``session`` has begun its transaction:
        it writes in transactions of its own, on ``session``'s engine."""
        engine = _engine(session)
        at = self.now()
        with engine.begin() as connection:
            attempt = insert_failure(connection, email_key, address, at)
        # A new transaction, after that commit: whatever committed before it is counted.
        with engine.begin() as connection:
            since = at - self.window
            over = _recent(connection, SigninFailure.email_key == email_key, since, self.limit)
            if not over and address is not None:
                where = SigninFailure.client_address == address
                over = _recent(connection, where, since, self.limit)
            if over:
                delete_failure(connection, attempt)
        if over:
            raise RateLimited(
                "Too many failed sign-ins; try again later.",
                headers={"Retry-After": str(int(self.window.total_seconds()))},
            )
        return attempt

    def succeed(self, session: Session, attempt: int) -> None:
        """The attempt signed in: it is no failure (deleted with the sign-in's commit)."""
        session.execute(delete(SigninFailure).where(SigninFailure.id == attempt))

    def release_after(self, session: Session, attempt: int) -> None:
        """The attempt is no failure, but its request is refused: delete its row once
        ``session``'s (rolled-back) transaction has ended."""
        write_after(
            session,
            lambda connection: delete_failure(connection, attempt),
            "signin_attempt_not_released",
        )


def _engine(session: Session) -> Engine:
    bind = session.get_bind()  # the engine only: this begins no transaction
    return bind if isinstance(bind, Engine) else bind.engine


def _recent(connection: Connection, where: Any, since: datetime, limit: int) -> bool:
    """More than ``limit`` failures since ``since`` match ``where`` (scans ``limit + 1``
    index entries at most)."""
    recent = (
        select(SigninFailure.id)
        .where(where, SigninFailure.failed_at > since)
        .limit(limit + 1)
        .subquery()
    )
    return int(connection.execute(select(func.count()).select_from(recent)).scalar_one()) > limit


def insert_failure(
    connection: Connection, email_key: str, address: str | None, at: datetime
) -> int:
    result = connection.execute(
        insert(SigninFailure)
        .values(email_key=email_key, client_address=address, failed_at=at)
        .returning(SigninFailure.id)
    )
    return int(result.scalar_one())


def delete_failure(connection: Connection, attempt: int) -> None:
    connection.execute(delete(SigninFailure).where(SigninFailure.id == attempt))


def purge_failures(session: Session, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` failures recorded before ``before``; returns how many."""
    oldest = select(SigninFailure.id).where(SigninFailure.failed_at < before).limit(batch)
    ids = list(session.execute(oldest).scalars())
    if ids:
        session.execute(delete(SigninFailure).where(SigninFailure.id.in_(ids)))
    return len(ids)
