"""The sweep of a programme: release timed-out holds (value back to the voucher, or
to the budget if the voucher has ended), then expire vouchers past ``expires_at``
(value back to the budget). It sits above vouchers and redemptions because it does
both; the API route and ``voucherledger sweep`` call it.

Lock order, so that a sweep cannot deadlock with claims, decisions, revokes or
another sweep:

1. the programme row, ``FOR NO KEY UPDATE`` (``programmes.repository.lock_for_sweep``):
   sweeps of one programme queue, but a claim's foreign-key check on the row does not
   wait for them — a claim takes that after its voucher's ledger account;
2. the timed-out claims, in id order (what a decision on a claim locks first);
3. every voucher the sweep will touch, in id order, each as ``lock_voucher`` does
   (its ledger account, then its row: the order of a claim), **before** any budget
   account: a revoke or a decision holds its voucher and then wants the budget, so
   a sweep holding the budget must never go on to wait for a voucher;
4. then the postings, whose ledger accounts the ledger locks in sorted order.

``voucherledger sweep`` runs each programme in a transaction of its own and runs it
again when the database rolls it back as a deadlock or serialization failure, as the
API's route class does for a request.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from voucherledger import ledger
from voucherledger.core.auth import Principal
from voucherledger.core.db import MAX_ATTEMPTS, run_retrying, transaction, utcnow
from voucherledger.core.errors import NotFound
from voucherledger.core.observability import (
    SWEEP_HOLDS_RELEASED,
    SWEEP_VOUCHERS_EXPIRED,
    count_on_commit,
)
from voucherledger.programmes import repository as programmes_repo
from voucherledger.programmes import service as programmes
from voucherledger.programmes.models import Programme
from voucherledger.redemptions.service import expired_holds, release_expired_holds
from voucherledger.sweep.schemas import SweepOut
from voucherledger.vouchers.service import ISSUERS, due_to_expire, expire_due, lock_voucher


def sweep_programme(
    session: Session,
    programme: Programme,
    now: datetime,
    actor: str | None,
    *,
    created_by: str,
) -> SweepOut:
    """Sweep one programme, which the caller has locked (``lock_for_sweep``). ``actor``
    is the account asking (None for the background job and the CLI) and ``created_by``
    the person or key (``"system"`` for them): the journal records both."""
    holds = expired_holds(session, programme.id, now)
    due = due_to_expire(session, programme.id, now)
    for voucher_id in sorted({hold.voucher_id for hold in holds} | {v.id for v in due}):
        lock_voucher(session, voucher_id)
    released, held = release_expired_holds(
        session, programme.id, now, actor, holds, created_by=created_by
    )
    count, returned = expire_due(session, programme, now, actor, due, created_by=created_by)
    count_on_commit(session, SWEEP_HOLDS_RELEASED, released)
    count_on_commit(session, SWEEP_VOUCHERS_EXPIRED, count)
    return SweepOut(
        expired_vouchers=count,
        returned_amount=returned,
        released_holds=released,
        released_amount=held,
    )


def sweep(session: Session, principal: Principal, programme_id: str) -> SweepOut:
    """``POST /v1/programmes/{id}/sweep`` by one of the programme's issuers."""
    programmes.access(session, principal, programme_id, roles=ISSUERS)
    programme = programmes_repo.lock_for_sweep(session, programme_id)
    if programme is None:
        raise NotFound(f"No programme {programme_id}.")
    return sweep_programme(
        session, programme, utcnow(), principal.account_id, created_by=principal.actor_ref
    )


def _sweep_one(factory: sessionmaker[Session], programme_id: str) -> SweepOut | None:
    with transaction(factory) as session:
        locked = programmes_repo.lock_for_sweep(session, programme_id)
        if locked is None:
            return None
        return sweep_programme(session, locked, utcnow(), actor=None, created_by=ledger.SYSTEM)


def sweep_all(
    factory: sessionmaker[Session], programme_ids: list[str], *, attempts: int = MAX_ATTEMPTS
) -> Iterator[tuple[str, SweepOut]]:
    """Sweep each programme in a transaction of its own (``voucherledger sweep``), each
    run up to ``attempts`` times if the database rolls it back as transient."""
    for programme_id in programme_ids:
        result = run_retrying(partial(_sweep_one, factory, programme_id), attempts=attempts)
        if result is not None:
            yield programme_id, result
