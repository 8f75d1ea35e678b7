"""Sweeps racing claims on the same vouchers (PostgreSQL): nobody deadlocks.

Two claim threads place holds on four vouchers while a ``voucherledger sweep`` thread
(``sweep_all``) and an API-sweep thread (``sweep.service.sweep``) release them, with a
sweep clock a month ahead so that every hold has timed out for them. The sweeps run
without retries here, so a deadlock would surface as ``DeadlockDetected``; every call
must succeed, and the ledger must still balance.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from tests.factories.app import client_for
from tests.factories.programmes import issue, ledger_problems, session_factory
from tests.factories.redemptions import claim_programme, make_cast
from voucherledger.core.auth import Principal
from voucherledger.core.db import MAX_ATTEMPTS, transaction
from voucherledger.core.settings import Settings
from voucherledger.redemptions import service as redemptions
from voucherledger.redemptions.limiter import FailureLimiter
from voucherledger.redemptions.schemas import RedemptionCreate
from voucherledger.sweep import service as sweeps

ROUNDS = 25
VOUCHERS = 4

# Four threads, each with a connection: one such test at a time (see conftest).
pytestmark = pytest.mark.xdist_group("pg_connections")


def _month_ahead() -> datetime:
    return datetime.now(UTC) + timedelta(days=30)


def test_sweeps_and_claims_on_the_same_vouchers_never_deadlock(
    settings: Settings, pg_only: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings.model_copy(update={"pool_size": 4})
    with client_for(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(
            client, cast, VOUCHERS * 1_000_000, accredit_for=(cast.supplier,)
        )
        codes = [
            issue(client, cast.manager, programme["id"], cast.group.id, 1_000_000)["code"]
            for _ in range(VOUCHERS)
        ]
        factory = session_factory(client)
        monkeypatch.setattr(sweeps, "utcnow", _month_ahead)
        supplier = Principal(account_id=cast.supplier.id, kind="supplier", key_id="key_t")
        manager = Principal(account_id=cast.manager.id, kind="manager", key_id="key_t")
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def claims(seed: int) -> None:
            pick = random.Random(seed)
            for _ in range(ROUNDS):
                body = RedemptionCreate(
                    voucher_code=pick.choice(codes),
                    amount=1,
                    service_category="leadership",
                    description="training",
                )
                with transaction(factory) as session:
                    redemptions.claim(
                        session, supplier, body, limiter=FailureLimiter(), ledger_key=None
                    )

        def cli_sweeps() -> None:
            for _ in range(ROUNDS):
                list(sweeps.sweep_all(factory, [programme["id"]], attempts=1))

        def api_sweeps() -> None:
            for _ in range(ROUNDS):
                with transaction(factory) as session:
                    sweeps.sweep(session, manager, programme["id"])

        def run(work: Callable[[], None]) -> None:
            try:
                start.wait(timeout=30)
                work()
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(work,), daemon=True)
            for work in (lambda: claims(1), lambda: claims(2), cli_sweeps, api_sweeps)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == [], [f"{type(e).__name__}: {e}" for e in errors]
        assert ledger_problems(client) == []


def test_the_cli_sweep_runs_a_deadlocked_programme_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``voucherledger sweep`` retries what the database rolled back as a deadlock or a
    serialization failure, as the API does."""
    with client_for(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(client, cast)
        factory = session_factory(client)
    real = sweeps.sweep_programme
    calls: list[int] = []

    class Deadlock(Exception):
        sqlstate = "40P01"

    def deadlocks_once(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE ...", {}, Deadlock("deadlock detected"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sweeps, "sweep_programme", deadlocks_once)
    done = list(sweeps.sweep_all(factory, [programme["id"]]))
    assert [programme_id for programme_id, _ in done] == [programme["id"]]
    assert len(calls) == 2

    def always_deadlocks(*args: object, **kwargs: object) -> object:
        calls.append(1)
        raise OperationalError("UPDATE ...", {}, Deadlock("deadlock detected"))

    calls.clear()
    monkeypatch.setattr(sweeps, "sweep_programme", always_deadlocks)
    with pytest.raises(DBAPIError):
        list(sweeps.sweep_all(factory, [programme["id"]]))
    assert len(calls) == MAX_ATTEMPTS
