"""Test databases: every database test runs on SQLite and on PostgreSQL.

Each backend's schema is built once per run by the Alembic migrations (so the
triggers are tested on every run) into a template; each test then gets a fresh
copy — a copied file on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL.
Tests commit for real: the ledger's tables refuse DELETE, so there is nothing
to roll back to and no shared state between tests.

PostgreSQL is found at ``VOUCHERLEDGER_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). Where it is not reachable
its tests are skipped with a message — unless ``CI=true``, where that fails.
``VOUCHERLEDGER_TEST_BACKENDS`` (comma-separated, default ``sqlite,postgresql``)
chooses the backends; a backend left out is skipped, even with ``CI=true``.

Under pytest-xdist every worker builds its own templates and databases (their
names carry the worker id and the pid). Each PostgreSQL test database is dropped
as soon as the test that made it finishes (by a background thread, so that the
next test need not wait for the checkpoint a drop costs); the template at the end.

Connections: ``make test`` runs two workers and must stay under 60 PostgreSQL
connections at once (``max_connections`` is 100, and other suites share the
server). ``create_db_engine`` allows as much overflow as ``pool_size``, so a pool
of n opens up to 2n. An ordinary test's engines (``engine``, ``settings``) open 4
each at most. The tests that open many at once (real concurrency: up to 36) carry
``xdist_group("pg_connections")`` and ``make test`` runs with ``--dist loadgroup``,
so only one of them runs at a time, next to one ordinary test on the other worker.
``bench/pg_peak.py -- make test`` measures the peak.

Hypothesis runs under a profile: ``dev`` (few examples, the default) or ``ci``
(the full budget), chosen by ``VOUCHERLEDGER_HYPOTHESIS_PROFILE``; with ``CI=true``
and the variable unset, ``ci``.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import queue
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from voucherledger.core.db import create_db_engine, create_session_factory
from voucherledger.core.settings import Settings
from voucherledger.ops.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "VOUCHERLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CI = os.environ.get("CI", "").lower() == "true"
TEST_SIGNING_KEY = "11" * 32
ALL_BACKENDS = ("sqlite", "postgresql")


def _backends() -> list[str]:
    chosen = os.environ.get("VOUCHERLEDGER_TEST_BACKENDS", ",".join(ALL_BACKENDS))
    backends = [b.strip() for b in chosen.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(ALL_BACKENDS))
    if unknown or not backends:
        raise pytest.UsageError(
            f"VOUCHERLEDGER_TEST_BACKENDS={chosen!r}: expected a comma-separated subset "
            f"of {', '.join(ALL_BACKENDS)}"
        )
    return [b for b in ALL_BACKENDS if b in backends]


BACKENDS = _backends()

# --- Hypothesis: the profile decides how many examples every property and machine gets.
# ``ci`` keeps at least the thoroughness the tests had when they fixed their own counts
# (100 examples for a plain @given, hypothesis' default; 30 steps a machine run).
# No deadlines: a test must not fail because the machine is busy.
hypothesis_settings.register_profile(
    "ci", max_examples=100, stateful_step_count=30, deadline=None, print_blob=True
)
hypothesis_settings.register_profile("dev", max_examples=20, stateful_step_count=10, deadline=None)
HYPOTHESIS_PROFILE = os.environ.get("VOUCHERLEDGER_HYPOTHESIS_PROFILE") or ("ci" if CI else "dev")
if HYPOTHESIS_PROFILE not in ("ci", "dev"):
    raise pytest.UsageError(
        f"VOUCHERLEDGER_HYPOTHESIS_PROFILE={HYPOTHESIS_PROFILE!r}: expected dev or ci"
    )
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)


def machine_settings(*, examples: float, steps: float = 1.0) -> hypothesis_settings:
    """Settings for a state machine that costs a fresh database per example: a share
    of the active profile's ``max_examples`` and ``stateful_step_count``."""
    profile = hypothesis_settings.default
    assert profile is not None  # a profile is loaded at import
    return hypothesis_settings(
        max_examples=max(1, round(profile.max_examples * examples)),
        stateful_step_count=max(1, round(profile.stateful_step_count * steps)),
    )


_counter = itertools.count()
# One namespace per process: under xdist each worker (gw0, gw1, ...) has its own.
_prefix = f"vl_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
_pg_state: dict[str, object] = {}


class _Dropper:
    """Drops PostgreSQL test databases, one after another, in a background thread.

    On PostgreSQL 15 every ``DROP DATABASE`` waits for a checkpoint, which takes
    seconds when the server is busy; the next test need not wait for it. A database
    is queued as soon as its test finishes; the session waits for the queue at its
    end, and drops whatever could not be dropped itself.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: set[str] = set()  # created; no drop asked for yet
        self.undropped: set[str] = set()  # created; not known to be dropped
        self.queue: queue.Queue[str] = queue.Queue()
        self.thread: threading.Thread | None = None

    def created(self, name: str) -> None:
        with self.lock:
            self.live.add(name)
            self.undropped.add(name)

    def drop(self, name: str) -> None:
        with self.lock:
            if name not in self.live:
                return  # asked for already (a state machine drops its own)
            self.live.discard(name)
        # The drop may wait behind others, but the test's connections may not: refuse
        # new ones and close what the test left open now, so that connections never
        # pile up behind the queue (they are what the 60-connection budget counts).
        _admin_execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        _admin_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="drop-dbs", daemon=True)
                self.thread.start()
        self.queue.put(name)

    def _run(self) -> None:
        while True:
            name = self.queue.get()
            try:
                _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                with self.lock:
                    self.undropped.discard(name)
            except psycopg.Error:
                pass  # dropped at session end, where an error is reported
            finally:
                self.queue.task_done()

    def finish(self) -> None:
        """Wait for the queued drops, then drop what is left, here and now."""
        with self.lock:
            self.live.clear()
        self.queue.join()
        for name in sorted(self.undropped):
            _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.undropped.discard(name)


_dropper = _Dropper()


def _pg_admin_dsn() -> str:
    return make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_url(database: str) -> str:
    return (
        make_url(PG_ADMIN_URL)
        .set(drivername="postgresql", database=database)
        .render_as_string(hide_password=False)
    )


def postgres_unavailable_reason() -> str | None:
    if "reason" not in _pg_state:
        try:
            with psycopg.connect(_pg_admin_dsn(), connect_timeout=3, autocommit=True):
                _pg_state["reason"] = None
        except psycopg.Error as exc:
            _pg_state["reason"] = (
                f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({type(exc).__name__}); "
                "its tests are skipped. Start it or set VOUCHERLEDGER_TEST_POSTGRES_URL."
            )
    reason = _pg_state["reason"]
    return reason if isinstance(reason, str) else None


def require_postgres() -> None:
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is not in VOUCHERLEDGER_TEST_BACKENDS")
    reason = postgres_unavailable_reason()
    if reason is None:
        return
    if CI:
        pytest.fail(f"CI=true requires PostgreSQL: {reason}", pytrace=False)
    pytest.skip(reason)


def _admin_execute(sql: str) -> None:
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    require_postgres()
    name = f"{_prefix}_template"
    _admin_execute(f"DROP DATABASE IF EXISTS {name}")
    _admin_execute(f"CREATE DATABASE {name}")
    upgrade(_pg_url(name))
    try:
        yield name
        _dropper.finish()  # each test's databases were queued for dropping when it ended
    finally:
        _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def drop_postgres_database(name: str) -> None:
    """Drop a test database now (in the background), closing whatever connections are
    still open on it; a second call for the same database does nothing."""
    _dropper.drop(name)


def fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a new, migrated, empty database of the given backend.

    A PostgreSQL database is dropped when ``request`` (the test, or the fixture asking)
    finishes; fixtures set up after it, such as ``engine``, are torn down first.
    """
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / f"test_{next(_counter)}.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"{_prefix}_{next(_counter)}"
    _admin_execute(f"CREATE DATABASE {name} TEMPLATE {template_name}")
    track_postgres_database(name, request)
    return _pg_url(name)


def track_postgres_database(name: str, request: pytest.FixtureRequest) -> None:
    """Drop the test database ``name`` when ``request`` finishes (at session end at the
    latest)."""
    _dropper.created(name)
    request.addfinalizer(lambda: drop_postgres_database(name))


@pytest.fixture(autouse=True)
def _one_connection_heavy_test_at_a_time(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Tests marked ``xdist_group("pg_connections")`` run one at a time across xdist
    workers, under an exclusive lock on a file the workers share.

    ``--dist loadgroup`` does not keep them on one worker with pytest-xdist 3.8 here
    (measured: two 32-connection tests ran at once, 64 connections, over the budget),
    so the lock is what keeps a run under 60. Autouse, it is set up before the
    test's database fixtures and torn down after them."""
    callspec = getattr(request.node, "callspec", None)
    on_sqlite = callspec is not None and callspec.params.get("backend") == "sqlite"
    if request.node.get_closest_marker("xdist_group") is None or on_sqlite:
        yield
        return
    lock = tmp_path_factory.getbasetemp().parent / "voucherledger-pg-connections.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


@pytest.fixture
def pg_only(backend: str) -> str:
    """Use with ``backend``: skips the SQLite run of a PostgreSQL-only test."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    return backend


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(backend, request, tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url, pool_size=2)  # up to 4 connections with overflow
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(engine)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        signing_key=TEST_SIGNING_KEY,
        signing_key_file=tmp_path / "unused-key",
        sealer_enabled=False,
        sweep_enabled=False,  # tests sweep when they mean to
        webhook_delivery_enabled=False,  # tests deliver when they mean to
        pool_size=2,  # the app's engine: up to 4 connections with overflow
        log_level="WARNING",
        password_time_cost=1,  # Argon2id at its cheapest: tests hash many passwords
        password_memory_kib=8,
        password_parallelism=1,
    )
