"""A claim that loses a race to a revoke or an expiry is told why (PostgreSQL).

The interleaving is forced, not hoped for: the revoke (or the sweep's expiry) runs in
a transaction left open, holding the voucher's ledger account; the claim, in a thread
of its own, reads the voucher while it is still active and then waits on that lock;
once it waits, the revoke commits and the claim's guarded update finds nothing left.
The claim must answer ``voucher_revoked`` / ``voucher_expired``, not
``voucher_exhausted``: the voucher had value, it was taken away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.app import client_for
from tests.factories.programmes import issue, session_factory
from tests.factories.redemptions import Cast, claim_programme, make_cast
from tests.factories.server import pg_dsn, waiting_on_locks
from voucherledger.core.auth import Principal
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.errors import VoucherExpired, VoucherRevoked
from voucherledger.core.settings import Settings
from voucherledger.programmes import repository as programmes_repo
from voucherledger.redemptions import service as redemptions
from voucherledger.redemptions.limiter import FailureLimiter
from voucherledger.redemptions.schemas import RedemptionCreate
from voucherledger.vouchers import service as vouchers


def _claim_in_thread(
    factory: sessionmaker[Session], supplier_id: str, code: str
) -> tuple[threading.Thread, list[BaseException | None]]:
    outcome: list[BaseException | None] = []
    principal = Principal(account_id=supplier_id, kind="supplier", key_id="key_test")
    body = RedemptionCreate(
        voucher_code=code, amount=100, service_category="leadership", description="training"
    )

    def run() -> None:
        try:
            with transaction(factory) as session:
                redemptions.claim(
                    session, principal, body, limiter=FailureLimiter(), ledger_key=None
                )
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    return thread, outcome


def _race(
    client: TestClient, settings: Settings, end: Callable[[Session, Cast, str, str], None]
) -> BaseException | None:
    """Run ``end(session, cast, programme id, voucher id)`` in an open transaction, a claim
    that waits on it, then commit; the claim's outcome."""
    cast = make_cast(client)
    programme = claim_programme(client, cast, accredit_for=(cast.supplier,))
    voucher = issue(client, cast.manager, programme["id"], cast.group.id, 500)
    factory = session_factory(client)
    dsn = pg_dsn(settings.database_url)
    session = factory()
    try:
        end(session, cast, programme["id"], voucher["id"])
        thread, outcome = _claim_in_thread(factory, cast.supplier.id, voucher["code"])
        thread.start()
        deadline = time.monotonic() + 20
        while waiting_on_locks(dsn) == 0:
            assert thread.is_alive(), outcome  # it must wait, not finish first
            assert time.monotonic() < deadline, "the claim never waited on the lock"
            time.sleep(0.02)
        session.commit()
    finally:
        session.close()
    thread.join(timeout=20)
    assert not thread.is_alive()
    return outcome[0]


def test_a_claim_losing_to_a_revoke_is_voucher_revoked(settings: Settings, pg_only: str) -> None:
    def revoke(session: Session, cast: Cast, programme_id: str, voucher_id: str) -> None:
        vouchers.revoke(
            session,
            Principal(account_id=cast.manager.id, kind="manager", key_id="key_test"),
            voucher_id,
            "duplicate",
            None,
        )

    with client_for(settings) as client:
        error = _race(client, settings, revoke)
    assert isinstance(error, VoucherRevoked), error


def test_a_claim_losing_to_an_expiry_is_voucher_expired(settings: Settings, pg_only: str) -> None:
    def expire(session: Session, cast: Cast, programme_id: str, voucher_id: str) -> None:
        programme = programmes_repo.get(session, programme_id, for_update=True)
        assert programme is not None
        # The sweep of a clock past the voucher's expiry; the claim's clock is not.
        count, _ = vouchers.expire_due(
            session, programme, utcnow() + timedelta(days=3650), None, created_by="system"
        )
        assert count == 1

    with client_for(settings) as client:
        error = _race(client, settings, expire)
    assert isinstance(error, VoucherExpired), error
