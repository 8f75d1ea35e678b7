"""``rawsql.Pipeline``: statements sent together (one round trip on PostgreSQL) land
in the session's transaction like any other; an error of one of them comes out as
SQLAlchemy's error at the end and, the transaction rolled back, nothing is kept."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.app import client_for
from tests.factories.programmes import session_factory
from voucherledger.core.db import transaction
from voucherledger.core.rawsql import Pipeline
from voucherledger.core.settings import Settings

INSERT = "INSERT INTO event_counters (name, value) VALUES (?, ?)"


def _names(factory: sessionmaker[Session]) -> set[str]:
    with factory() as session:
        return set(session.execute(text("SELECT name FROM event_counters")).scalars())


def test_pipelined_statements_commit_with_the_transaction(settings: Settings) -> None:
    with client_for(settings) as client:
        factory = session_factory(client)
        before = _names(factory)
        with transaction(factory) as session:
            with Pipeline(session) as db:
                db.execute(INSERT, ("pipe-a", 1))
                db.execute(INSERT, ("pipe-b", 2))
            # Sent and answered when the block ends: the same transaction reads them.
            found = session.execute(
                text("SELECT value FROM event_counters WHERE name LIKE 'pipe-%' ORDER BY name")
            ).scalars()
            assert list(found) == [1, 2]
        assert _names(factory) - before == {"pipe-a", "pipe-b"}


def test_an_error_in_a_pipeline_is_sqlalchemys_and_keeps_nothing(settings: Settings) -> None:
    with client_for(settings) as client:
        factory = session_factory(client)
        before = _names(factory)

        def twice() -> None:
            with transaction(factory) as session, Pipeline(session) as db:
                db.execute(INSERT, ("pipe-c", 1))
                db.execute(INSERT, ("pipe-c", 2))  # the same key: refused

        with pytest.raises(IntegrityError):
            twice()
        assert _names(factory) == before
