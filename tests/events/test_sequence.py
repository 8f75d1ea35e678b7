"""The feed's order is the order of commit: an event committed late is read after
the ones committed before it, whatever its time; old events are purged, the journal
never; the journal itself resumes by seal sequence."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.events.helpers import read_all
from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.ledger import journal_counts
from tests.factories.programmes import deposit, issue
from tests.factories.programmes import session_factory as factory_of
from tests.factories.redemptions import claim_programme, make_cast
from voucherledger.core import events
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.settings import Settings
from voucherledger.sweep.background import LEASE_NAME, LeaseHolder, housekeep

DAY = timedelta(hours=24)


def _emit(session: Session, name: str, reader: str, at_offset: timedelta) -> str:
    return events.emit(
        session,
        "programme.funded",
        {"object": {"name": name}},
        account_ids=[reader],
        at=utcnow() + at_offset,
    )


def test_an_event_committed_late_is_read_after_the_ones_before_it(
    settings: Settings, backend: str
) -> None:
    with client_for(settings) as client:
        funder = make_party(client, admin_headers(client), "funder")
        factory = factory_of(client)
        late = factory()
        try:
            if backend == "postgresql":
                # A writes its event first (the earlier time) and stays open...
                late_id = _emit(late, "A", funder.id, -timedelta(seconds=5))
                late.flush()
            with transaction(factory) as session:  # ...while B commits.
                early_id = _emit(session, "B", funder.id, timedelta())
            events.sequence_pending(factory)
            first = read_all(client, funder.headers)
            assert [e["id"] for e in first] == [early_id]
            if backend != "postgresql":
                # One writer at a time on SQLite: A's change, timed before B's, only
                # reaches the database after B committed.
                late_id = _emit(late, "A", funder.id, -timedelta(seconds=5))
            late.commit()
        finally:
            late.close()
        events.sequence_pending(factory)
        response = client.get("/v1/events", headers=funder.headers, params={"after": early_id})
        assert response.status_code == 200, response.text
        resumed = response.json()["data"]
        assert [e["id"] for e in resumed] == [late_id]
        assert resumed[0]["created_at"] < first[0]["created_at"]
        assert resumed[0]["sequence"] > first[0]["sequence"]


def _event_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.execute(select(func.count()).select_from(events.Event)).scalar_one())


def test_the_sweep_purges_events_past_their_keeping_and_never_the_journal(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with client_for(settings) as client:
        cast = make_cast(client)
        pid = claim_programme(client, cast)["id"]
        issue(client, cast.manager, pid, cast.group.id, 1000)
        with transaction(session_factory) as session:
            old = _emit(session, "old", cast.funder.id, -timedelta(days=31))
        events.sequence_pending(session_factory)
        recent = _event_count(session_factory) - 1
        assert recent >= 3  # created, funded, issued
        with session_factory() as session:
            journal = journal_counts(session)

        lease = LeaseHolder(session_factory, LEASE_NAME, holder="purger", seconds=30)
        done = housekeep(
            session_factory, lease, idempotency_retention=DAY, events_retention=timedelta(days=30)
        )
        assert done is not None
        assert done.purged_events == 1
        assert _event_count(session_factory) == recent
        assert old not in {e["id"] for e in read_all(client, cast.funder.headers)}

        # Two months on, every event has gone; the journal is whole.
        done = housekeep(
            session_factory,
            lease,
            idempotency_retention=DAY,
            events_retention=timedelta(days=30),
            clock=lambda: utcnow() + timedelta(days=62),
        )
        assert done is not None
        assert done.purged_events == recent
        assert _event_count(session_factory) == 0
        with session_factory() as session:
            assert journal_counts(session) == journal
        balances = client.get(f"/v1/programmes/{pid}", headers=cast.funder.headers)
        assert balances.json()["balances"]["outstanding"] == 1000


def test_the_journal_resumes_by_seal_sequence(settings: Settings) -> None:
    with client_for(settings) as client:
        cast = make_cast(client)
        pid = claim_programme(client, cast)["id"]  # one deposit
        for amount in (100, 200, 300):
            issue(client, cast.manager, pid, cast.group.id, amount)
        headers = cast.funder.headers

        plain = client.get("/v1/ledger/transactions", headers=headers).json()
        assert len(plain["data"]) == 4
        assert {t["sequence"] for t in plain["data"]} == {None}  # nothing sealed yet
        assert plain["next_after_sequence"] is None

        def page(after: int, limit: int = 2) -> dict[str, object]:
            response = client.get(
                "/v1/ledger/transactions",
                headers=headers,
                params={"after_sequence": after, "limit": limit},
            )
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            return body

        first = page(0)  # seals what is pending first
        data = first["data"]
        assert isinstance(data, list)
        assert [t["sequence"] for t in data] == [1, 2]
        assert first["next_after_sequence"] == 2
        assert first["has_more"] is True  # a full page with more sealed after it
        second = page(2)
        assert isinstance(second["data"], list)
        assert [t["sequence"] for t in second["data"]] == [3, 4]
        assert second["has_more"] is False  # the last two
        ids = [t["id"] for t in data] + [t["id"] for t in second["data"]]
        assert sorted(ids) == sorted(t["id"] for t in plain["data"])
        end = page(4)
        assert (end["data"], end["next_after_sequence"]) == ([], 4)

        made = deposit(client, cast.funder, pid, 50)
        later = page(4)
        assert isinstance(later["data"], list)
        assert [(t["id"], t["sequence"]) for t in later["data"]] == [(made["transaction_id"], 5)]
        assert later["next_after_sequence"] == 5

        # Another funder's journal has none of it; a cursor does not mix with a sequence.
        other = client.get(
            "/v1/ledger/transactions",
            headers=cast.other_funder.headers,
            params={"after_sequence": 0},
        )
        assert other.status_code == 200
        assert other.json()["data"] == []
        mixed = client.get(
            "/v1/ledger/transactions",
            headers=headers,
            params={"after_sequence": 0, "cursor": "dHhu"},
        )
        assert mixed.status_code == 422
        assert mixed.json()["code"] == "validation_error"
        negative = client.get(
            "/v1/ledger/transactions", headers=headers, params={"after_sequence": -1}
        )
        assert negative.status_code == 422
