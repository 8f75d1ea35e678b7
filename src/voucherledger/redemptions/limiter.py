"""Slowing down suppliers who try codes: after ``limit`` failed look-ups within
``window`` seconds, every further claim of that supplier is refused (429) until
the oldest failure leaves the window — so the 11th try in a minute is refused.

The count lives in the database (``code_failures``, one row per failed look-up), so
every server process and every node sees the same count and a restart keeps it.
Checking it is one bounded index range scan in the claim's own transaction.

A failed look-up answers 404 or 422, and the claim's transaction is rolled back,
so the failure cannot be written in it. It is written in a short transaction of its
own, once the claim's transaction has ended: on SQLite the claim's transaction holds
the write lock until then, so writing earlier from another connection would wait on
it. The failure is in the database before the 404 or 422 leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from voucherledger.core.db import utcnow, write_after
from voucherledger.redemptions import repository


class FailureLimiter:
    def __init__(
        self, limit: int = 10, window: float = 60.0, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock

    def since(self) -> datetime:
        """Failures after this instant count."""
        return self._clock() - timedelta(seconds=self.window)

    def blocked(self, session: Session, supplier_id: str) -> bool:
        count = repository.recent_code_failures(session, supplier_id, self.since(), self.limit)
        return self.over(count)

    def over(self, count: int) -> bool:
        """Whether ``count`` recent failures (counted up to :attr:`limit`) block."""
        return count >= self.limit

    def fail(self, session: Session, supplier_id: str) -> None:
        """Count a failed look-up once ``session``'s transaction has ended, whether it
        is rolled back (as a request's is), committed or closed."""
        at = self._clock()
        write_after(
            session,
            lambda connection: repository.insert_code_failure(connection, supplier_id, at),
            "code_failure_not_recorded",
        )
