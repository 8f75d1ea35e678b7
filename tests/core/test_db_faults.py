"""Database faults answered as a service should.

- Connections the server's PostgreSQL terminates between requests are found dead
  before use (pre-ping) and replaced: the next request succeeds.
- Terminated while requests are in flight: no 5xx but 503 ``database_unavailable``,
  and once the terminations stop, requests succeed again.
- A connection lost at COMMIT is never run again (its outcome is unknown): 503, the
  handler ran once; lost before COMMIT, the request is run again.
- A database that cannot be reached: 503 ``database_unavailable`` with Retry-After.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Annotated

import httpx
import psycopg
import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.factories.app import admin_headers, client_for, flaky_client
from tests.factories.server import free_port, pg_dsn, running_server
from voucherledger.app import create_app
from voucherledger.core.auth import generate_key
from voucherledger.core.errors import PROBLEM_JSON
from voucherledger.core.routing import CommittingRoute
from voucherledger.core.session import get_session
from voucherledger.core.settings import Settings

TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE application_name = 'voucherledger' AND datname = current_database()"
)


def _terminate(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return len(conn.execute(TERMINATE).fetchall())


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["retry-after"]) > 0


def test_connections_killed_between_requests_are_replaced(settings: Settings, pg_only: str) -> None:
    dsn = pg_dsn(settings.database_url)
    with client_for(settings) as client:
        admin = admin_headers(client)
        for _ in range(5):
            assert client.get("/v1/me", headers=admin).status_code == 200
            assert (
                client.post(
                    "/v1/accounts", headers=admin, json={"kind": "funder", "name": "F"}
                ).status_code
                == 201
            )
            assert _terminate(dsn) >= 1
            response = client.get("/v1/me", headers=admin)
            assert response.status_code == 200, response.text


@pytest.mark.slow
def test_connections_killed_under_load_give_503_at_worst(settings: Settings, pg_only: str) -> None:
    dsn = pg_dsn(settings.database_url)
    with client_for(settings) as client:
        admin = admin_headers(client)
    statuses: Counter[tuple[int, str]] = Counter()
    stop = threading.Event()
    with running_server(settings) as base_url:

        def load() -> None:
            with httpx.Client(base_url=base_url, headers=admin, timeout=30) as http:
                while not stop.is_set():
                    response = http.get("/v1/me")
                    code = "" if response.status_code < 400 else response.json().get("code", "")
                    if response.status_code >= 500:
                        assert response.headers["content-type"] == PROBLEM_JSON
                    statuses[(response.status_code, code)] += 1

        workers = [threading.Thread(target=load, daemon=True) for _ in range(3)]
        for worker in workers:
            worker.start()
        for _ in range(20):  # bounded: 20 rounds of terminations, 50 ms apart
            _terminate(dsn)
            time.sleep(0.05)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        assert not any(worker.is_alive() for worker in workers)
        with httpx.Client(base_url=base_url, headers=admin, timeout=30) as http:
            assert http.get("/v1/me").status_code == 200
    assert set(statuses) <= {(200, ""), (503, "database_unavailable")}, statuses
    assert statuses[(200, "")] > 0


def test_an_unreachable_database_answers_503(settings: Settings) -> None:
    unreachable = settings.model_copy(
        update={"database_url": f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"}
    )
    with client_for(unreachable) as client:
        response = client.get(
            "/v1/me", headers={"Authorization": f"Bearer {generate_key().plaintext}"}
        )
        _assert_unavailable(response)
        assert client.get("/readyz").status_code == 503


def _lost(at: str) -> OperationalError:
    error = OperationalError(at, {}, psycopg.OperationalError("server closed the connection"))
    error.connection_invalidated = True
    return error


def _counting_app(settings: Settings) -> tuple[TestClient, list[int]]:
    calls: list[int] = []
    router = APIRouter(route_class=CommittingRoute)

    @router.get("/count")
    def count(session: Annotated[Session, Depends(get_session)]) -> dict[str, int]:
        calls.append(1)
        return {"calls": len(calls)}

    app = create_app(settings)
    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False), calls


def test_a_connection_lost_at_commit_is_not_run_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, calls = _counting_app(settings)

    def commit(self: Session) -> None:
        raise _lost("COMMIT")

    with client:
        monkeypatch.setattr(Session, "commit", commit)
        response = client.get("/count")
    _assert_unavailable(response)
    assert len(calls) == 1


def test_a_connection_lost_before_commit_is_run_again(settings: Settings) -> None:
    client, calls = flaky_client(settings, [_lost("SELECT 1")])
    with client:
        response = client.get("/flaky")
    assert response.status_code == 200, response.text
    assert len(calls) == 2


def test_pool_size_and_overflow_bound_the_connections(settings: Settings, pg_only: str) -> None:
    """With one connection and no overflow, a request that finds the pool empty waits
    ``pool_timeout`` and answers 503, instead of opening another connection."""
    bounded = settings.model_copy(update={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.5})
    with client_for(bounded) as client:
        admin = admin_headers(client)
        assert client.get("/v1/me", headers=admin).status_code == 200
        engine = client.app.state.engine  # type: ignore[attr-defined]
        with engine.connect():  # the only connection, taken
            _assert_unavailable(client.get("/v1/me", headers=admin))
        assert client.get("/v1/me", headers=admin).status_code == 200


def test_ready_after_every_pooled_connection_was_closed(settings: Settings, pg_only: str) -> None:
    """Connections are not pinged when taken from the pool: /readyz, which runs no
    request retry, still answers ready at once after the server closed them all."""
    dsn = pg_dsn(settings.database_url)
    with client_for(settings) as client:
        admin = admin_headers(client)
        for _ in range(3):  # several pooled connections
            assert client.get("/v1/me", headers=admin).status_code == 200
        assert client.get("/readyz").status_code == 200
        assert _terminate(dsn) >= 1
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert client.get("/v1/me", headers=admin).status_code == 200


TERMINATE_SERVICE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE application_name = 'voucherledger' AND datname = current_database()"
)


def test_a_request_after_every_pooled_connection_died_succeeds(
    settings: Settings, pg_only: str
) -> None:
    """Connections are not pinged when taken: the first one found dead (here by the raw
    key check) must renew the whole pool, or a request burns its attempts on the
    others and answers 503."""
    settings = settings.model_copy(update={"pool_size": 4})
    with client_for(settings) as client:
        admin = admin_headers(client)
        engine = client.app.state.engine  # type: ignore[attr-defined]
        # Four idle connections in the pool (as a server has after any burst of load).
        held = [engine.connect() for _ in range(4)]
        for connection in held:
            connection.exec_driver_sql("SELECT 1")
        for connection in held:
            connection.close()
        with psycopg.connect(pg_dsn(settings.database_url), autocommit=True) as conn:
            assert len(conn.execute(TERMINATE_SERVICE).fetchall()) >= 4
        answer = client.get("/v1/me", headers=admin)  # folded: raw key check first
        assert answer.status_code == 200, answer.text
