"""Slowing down password guessing: after ``limit`` failed sign-ins within ``window``
for one email (folded to lower case), or from one client address, every further
sign-in for that email or from that address answers 429 ``rate_limited`` until the
oldest failure leaves the window. A failure is a wrong email, a wrong password or a
wrong (or replayed) TOTP code; a refused attempt is not counted again.

The count lives in the database (``signin_failures``), so every process and node
sees the same count and a restart keeps it; checking it is two bounded index range
scans. As with the voucher-code limiter (``redemptions/limiter.py``), the failed
sign-in's transaction is rolled back, so the failure is written in a short
transaction of its own once that one has ended (on SQLite the request's transaction
holds the write lock until then); it is in the database before the 401 leaves.

The client address is ``request.client.host``: behind a reverse proxy, run uvicorn
with ``--proxy-headers`` and ``--forwarded-allow-ips`` so that it is the client's,
not the proxy's (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.orm import Session

from voucherledger.core.db import utcnow, write_after
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

    def blocked(self, session: Session, email_key: str, address: str | None) -> bool:
        since = self.now() - self.window
        if _recent(session, SigninFailure.email_key == email_key, since, self.limit) >= self.limit:
            return True
        if address is None:
            return False
        recent = _recent(session, SigninFailure.client_address == address, since, self.limit)
        return recent >= self.limit

    def fail(self, session: Session, email_key: str, address: str | None) -> None:
        """Count a failed sign-in once ``session``'s transaction has ended."""
        at = self.now()
        write_after(
            session,
            lambda connection: insert_failure(connection, email_key, address, at),
            "signin_failure_not_recorded",
        )


def _recent(session: Session, where: Any, since: datetime, cap: int) -> int:
    recent = (
        select(SigninFailure.id).where(where, SigninFailure.failed_at > since).limit(cap).subquery()
    )
    return int(session.execute(select(func.count()).select_from(recent)).scalar_one())


def insert_failure(
    connection: Connection, email_key: str, address: str | None, at: datetime
) -> None:
    connection.execute(
        insert(SigninFailure).values(email_key=email_key, client_address=address, failed_at=at)
    )


def purge_failures(session: Session, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` failures recorded before ``before``; returns how many."""
    oldest = select(SigninFailure.id).where(SigninFailure.failed_at < before).limit(batch)
    ids = list(session.execute(oldest).scalars())
    if ids:
        session.execute(delete(SigninFailure).where(SigninFailure.id.in_(ids)))
    return len(ids)
