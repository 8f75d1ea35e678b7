"""The streaming replica the read-routing tests read from (``tools/pg_replica.sh``).

The replica is a second PostgreSQL cluster on this machine (port 5433 by default,
``VOUCHERLEDGER_TEST_REPLICA_URL``) replaying the primary's WAL: every test database
the conftest creates on the primary appears there once replayed. Where the replica is
not there its tests are skipped with a message — unless ``CI=true``, where that fails
(.ci/run makes the replica before ``make test``).

Pausing replay (:func:`paused_replay`) stops the whole replica, so every test that uses
it holds :func:`replica_lock`: one of them at a time across xdist workers.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import CI, PG_ADMIN_URL

REPLICA_ADMIN_URL = os.environ.get(
    "VOUCHERLEDGER_TEST_REPLICA_URL", "postgresql://postgres@127.0.0.1:5433/postgres"
)
# Replay may run far behind while other suites write WAL fast on the shared machine.
REPLAY_TIMEOUT_SECONDS = 600.0
_state: dict[str, str | None] = {}


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def replica_unavailable_reason() -> str | None:
    if "reason" not in _state:
        reason: str | None = None
        try:
            with psycopg.connect(_dsn(REPLICA_ADMIN_URL), connect_timeout=3) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if not (row and row[0]):
                    reason = f"{REPLICA_ADMIN_URL} is not a standby (pg_is_in_recovery false)"
        except psycopg.Error as exc:
            reason = f"no PostgreSQL replica at {REPLICA_ADMIN_URL} ({type(exc).__name__})"
        if reason is not None:
            reason += "; its tests are skipped. Make one with `bash tools/pg_replica.sh`."
        _state["reason"] = reason
    return _state["reason"]


def require_replica() -> None:
    reason = replica_unavailable_reason()
    if reason is None:
        return
    if CI:
        pytest.fail(f"CI=true requires the read replica: {reason}", pytrace=False)
    pytest.skip(reason)


def replica_url(primary_url: str) -> str:
    """The URL of the database ``primary_url`` names, on the replica."""
    database = make_url(primary_url).database
    replica = make_url(REPLICA_ADMIN_URL).set(drivername="postgresql", database=database)
    return replica.render_as_string(hide_password=False)


def _one(url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
        return row[0] if row else None


def wait_for_replay(timeout: float = REPLAY_TIMEOUT_SECONDS) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    target = _one(PG_ADMIN_URL, "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + timeout
    while True:
        if _one(REPLICA_ADMIN_URL, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the replica did not replay up to {target} in {timeout:.0f} s")
        time.sleep(0.1)


@contextmanager
def paused_replay() -> Iterator[None]:
    """The replica stops replaying (it still receives WAL) until the block ends: what
    it answers is frozen at what it had replayed when paused."""
    _one(REPLICA_ADMIN_URL, "SELECT pg_wal_replay_pause()")
    try:
        while _one(REPLICA_ADMIN_URL, "SELECT pg_get_wal_replay_pause_state()") != "paused":
            time.sleep(0.05)
        yield
    finally:
        _one(REPLICA_ADMIN_URL, "SELECT pg_wal_replay_resume()")


def read_connections(server_url: str, database: str) -> int:
    """How many connections of the service's read engine are open on ``database`` there."""
    count: int = _one(
        server_url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        database,
        "voucherledger-read",
    )
    return count


@contextmanager
def replica_lock(base: Path) -> Iterator[None]:
    """One replica test at a time across xdist workers (``base``: pytest's shared
    temporary root, the parent of each worker's ``getbasetemp()``)."""
    with (base / "voucherledger-replica.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
