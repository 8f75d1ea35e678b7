"""The committing route: a transaction the database rolled back as a deadlock or
serialization failure is run again instead of reaching the client."""

from __future__ import annotations

import psycopg

from tests.factories.app import flaky_client
from voucherledger.core.db import is_transient
from voucherledger.core.settings import Settings


def test_a_deadlock_is_retried_and_the_client_sees_success(settings: Settings) -> None:
    client, calls = flaky_client(
        settings,
        [
            psycopg.errors.DeadlockDetected("deadlock"),
            psycopg.errors.SerializationFailure("serialization"),
        ],
    )
    with client:
        response = client.get("/flaky")
    assert response.status_code == 200
    assert response.json() == {"calls": 3}
    assert len(calls) == 3


def test_retries_stop_after_three_attempts(settings: Settings) -> None:
    client, calls = flaky_client(
        settings, [psycopg.errors.DeadlockDetected("deadlock") for _ in range(5)]
    )
    with client:
        response = client.get("/flaky")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert len(calls) == 3


def test_other_errors_are_not_retried(settings: Settings) -> None:
    client, calls = flaky_client(settings, [psycopg.errors.UniqueViolation("duplicate")])
    with client:
        response = client.get("/flaky")
    assert response.status_code == 500
    assert len(calls) == 1
    assert not is_transient(psycopg.errors.UniqueViolation("duplicate"))
    assert is_transient(psycopg.errors.SerializationFailure("again"))
