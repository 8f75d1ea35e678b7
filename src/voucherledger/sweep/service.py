"""The sweep of a programme: release timed-out holds (value back to the voucher, or
to the budget if the voucher has ended), then expire vouchers past ``expires_at``
(value back to the budget). It sits above vouchers and redemptions because it does
both; the API route and ``voucherledger sweep`` call it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from voucherledger.core.auth import Principal
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.observability import (
    SWEEP_HOLDS_RELEASED,
    SWEEP_VOUCHERS_EXPIRED,
    count_on_commit,
)
from voucherledger.programmes import repository as programmes_repo
from voucherledger.programmes import service as programmes
from voucherledger.programmes.models import Programme
from voucherledger.redemptions.service import release_expired_holds
from voucherledger.sweep.schemas import SweepOut
from voucherledger.vouchers.service import ISSUERS, expire_due


def sweep_programme(
    session: Session, programme: Programme, now: datetime, actor: str | None
) -> SweepOut:
    """Sweep one programme, which the caller has locked."""
    holds, held = release_expired_holds(session, programme.id, now, actor)
    count, returned = expire_due(session, programme, now, actor)
    count_on_commit(session, SWEEP_HOLDS_RELEASED, holds)
    count_on_commit(session, SWEEP_VOUCHERS_EXPIRED, count)
    return SweepOut(
        expired_vouchers=count,
        returned_amount=returned,
        released_holds=holds,
        released_amount=held,
    )


def sweep(session: Session, principal: Principal, programme_id: str) -> SweepOut:
    """``POST /v1/programmes/{id}/sweep`` by one of the programme's issuers."""
    programme = programmes.access(
        session, principal, programme_id, roles=ISSUERS, for_update=True
    ).programme
    return sweep_programme(session, programme, utcnow(), principal.account_id)


def sweep_all(
    factory: sessionmaker[Session], programme_ids: list[str]
) -> Iterator[tuple[str, SweepOut]]:
    """Sweep each programme in a transaction of its own (``voucherledger sweep``)."""
    for programme_id in programme_ids:
        with transaction(factory) as session:
            locked = programmes_repo.get(session, programme_id, for_update=True)
            if locked is None:
                continue
            result = sweep_programme(session, locked, utcnow(), actor=None)
        yield programme_id, result
