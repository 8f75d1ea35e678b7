"""The committing route: a transaction the database rolled back as a deadlock or
serialization failure is run again instead of reaching the client."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter
from fastapi.testclient import TestClient

from voucherledger.app import create_app
from voucherledger.core.db import is_transient
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.settings import Settings


def _app_with(settings: Settings, failures: list[Exception]) -> tuple[TestClient, list[int]]:
    calls: list[int] = []
    router = APIRouter(route_class=CommittingRoute)

    @router.get("/flaky")
    def flaky() -> dict[str, int]:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return {"calls": len(calls)}

    app = create_app(settings)
    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False), calls


def test_a_deadlock_is_retried_and_the_client_sees_success(settings: Settings) -> None:
    client, calls = _app_with(
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
    client, calls = _app_with(
        settings, [psycopg.errors.DeadlockDetected("deadlock") for _ in range(5)]
    )
    with client:
        response = client.get("/flaky")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert len(calls) == 3


def test_other_errors_are_not_retried(settings: Settings) -> None:
    client, calls = _app_with(settings, [psycopg.errors.UniqueViolation("duplicate")])
    with client:
        response = client.get("/flaky")
    assert response.status_code == 500
    assert len(calls) == 1
    assert not is_transient(psycopg.errors.UniqueViolation("duplicate"))
    assert is_transient(psycopg.errors.SerializationFailure("again"))
