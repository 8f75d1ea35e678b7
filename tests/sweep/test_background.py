"""The background sweep: one pass expires, releases and purges; the server runs it by
itself; only the lease holder works; a purge never breaks a request in flight."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.accounts import account_body
from tests.factories.app import admin_headers, client_for
from tests.factories.redemptions import claim_programme, issue_expiring, make_cast, moved_clock
from voucherledger.core import idempotency, rawsql
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.idempotency import IdempotencyRecord, purge_records
from voucherledger.core.settings import Settings
from voucherledger.redemptions.models import CodeFailure
from voucherledger.sweep.background import LEASE_NAME, LeaseHolder, housekeep
from voucherledger.sweep.models import Lease
from voucherledger.vouchers.models import Voucher

DAY = timedelta(hours=24)


def _record(key: str, created_at: datetime, account_id: str = "acc_someone") -> IdempotencyRecord:
    return IdempotencyRecord(
        account_id=account_id,
        key=key,
        request_hash="0" * 64,
        status_code=201,
        response_body="{}",
        media_type="application/json",
        created_at=created_at,
    )


def _keys(factory: sessionmaker[Session]) -> set[str]:
    with factory() as session:
        return set(session.execute(select(IdempotencyRecord.key)).scalars())


def _voucher_status(factory: sessionmaker[Session], voucher_id: str) -> str:
    with factory() as session:
        return str(session.execute(select(Voucher.status).where(Voucher.id == voucher_id)).one()[0])


def test_a_pass_expires_vouchers_and_purges_what_is_past_keeping(
    settings: Settings, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    with client_for(settings) as client, moved_clock(monkeypatch) as clock:
        c = make_cast(client)
        pid = claim_programme(client, c)["id"]
        voucher = issue_expiring(client, c, pid, 5_000, after=timedelta(hours=1))
        with transaction(session_factory) as session:
            session.add_all(
                [
                    _record("old", now - DAY - timedelta(minutes=1)),
                    _record("recent", now - DAY + timedelta(minutes=5)),
                    CodeFailure(supplier_id=c.supplier.id, failed_at=now - timedelta(minutes=11)),
                    CodeFailure(supplier_id=c.supplier.id, failed_at=now - timedelta(seconds=30)),
                ]
            )
        clock.advance(timedelta(hours=2))
        first = LeaseHolder(session_factory, LEASE_NAME, holder="first", seconds=30)
        done = housekeep(session_factory, first, idempotency_retention=DAY)

        assert done is not None
        assert (done.expired_vouchers, done.released_holds) == (1, 0)
        assert (done.purged_idempotency_records, done.purged_code_failures) == (1, 1)
        assert _voucher_status(session_factory, voucher["id"]) == "expired"
        keys = _keys(session_factory)
        assert "old" not in keys
        assert "recent" in keys
        with session_factory() as session:
            left = session.execute(select(CodeFailure.failed_at)).scalars().all()
        assert [at > now - timedelta(minutes=1) for at in left] == [True]

        # Another process finds the lease held and does nothing.
        second = LeaseHolder(session_factory, LEASE_NAME, holder="second", seconds=30)
        assert housekeep(session_factory, second, idempotency_retention=DAY) is None


def test_the_server_sweeps_by_itself_and_gives_the_lease_up_when_it_stops(
    settings: Settings, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    with transaction(session_factory) as session:
        session.add(_record("stale", now - DAY - timedelta(hours=1)))
    background = settings.model_copy(update={"sweep_enabled": True, "sweep_interval_seconds": 0.05})
    with client_for(background) as client, moved_clock(monkeypatch) as clock:
        c = make_cast(client)
        pid = claim_programme(client, c)["id"]
        voucher = issue_expiring(client, c, pid, 5_000, after=timedelta(hours=1))
        clock.advance(timedelta(hours=2))
        for _ in range(400):  # at most 20 s; a pass every 50 ms
            swept = _voucher_status(session_factory, voucher["id"]) == "expired"
            if swept and "stale" not in _keys(session_factory):
                break
            time.sleep(0.05)
        assert _voucher_status(session_factory, voucher["id"]) == "expired"
        assert "stale" not in _keys(session_factory)
        sweeper: Any = client.app.state.sweeper  # type: ignore[attr-defined]
        assert sweeper.alive
        holder = sweeper.lease.holder
    with session_factory() as session:
        lease = session.execute(select(Lease).where(Lease.name == LEASE_NAME)).scalar_one()
    assert lease.holder == holder
    assert lease.expires_at <= utcnow()  # given up on shutdown: another may take it now


def test_a_record_purged_while_a_request_reads_it_does_not_fail_the_request(
    settings: Settings, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        me = client.get("/v1/me", headers=admin).json()["id"]
        with transaction(session_factory) as session:
            session.add(_record("reused", utcnow() - DAY - timedelta(hours=1), account_id=me))
        real = rawsql.Raw
        purged: list[int] = []

        class PurgedInBetween:
            """The key's INSERT meets the old record; the purge deletes it before the read."""

            def __init__(self, session: Session) -> None:
                self.session = session
                self.raw = real(session)

            def __enter__(self) -> PurgedInBetween:
                return self

            def __exit__(self, *exc: object) -> None:
                self.raw.__exit__(None, None, None)

            def bind(self, value: Any) -> Any:
                return self.raw.bind(value)

            def fetchone(self, sql: str, params: tuple[Any, ...]) -> Any:
                row = self.raw.fetchone(sql, params)
                if row is None and not purged:
                    purged.append(purge_records(self.session, utcnow() - DAY, 1000))
                return row

        monkeypatch.setattr(idempotency, "Raw", PurgedInBetween)
        response = client.post(
            "/v1/accounts",
            headers={**admin, "Idempotency-Key": "reused"},
            json=account_body("funder", "Fresh funder"),
        )
        assert purged == [1]
        assert response.status_code == 201, response.text


def test_idempotency_records_are_kept_at_least_a_day() -> None:
    assert Settings().idempotency_retention_hours == 24
    with pytest.raises(ValidationError):
        Settings(idempotency_retention_hours=23)
