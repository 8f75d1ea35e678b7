"""Test databases: every database test runs on SQLite and on PostgreSQL.

Each backend's schema is built once per run by the Alembic migrations (so the
triggers are tested on every run) into a template; each test then gets a fresh
copy — a copied file on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL.
Tests commit for real: the ledger's tables refuse DELETE, so there is nothing
to roll back to and no shared state between tests.

PostgreSQL is found at ``VOUCHERLEDGER_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). Where it is not reachable
its tests are skipped with a message — unless ``CI=true``, where that fails.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
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
BACKENDS = ["sqlite", "postgresql"]

_counter = itertools.count()
_prefix = f"vl_test_{os.getpid()}"
_pg_state: dict[str, object] = {}


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
    reason = postgres_unavailable_reason()
    if reason is None:
        return
    if CI:
        pytest.fail(f"CI=true requires PostgreSQL: {reason}", pytrace=False)
    pytest.skip(reason)


def _admin_execute(sql: str) -> None:
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


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
    created: list[str] = []
    _pg_state["created"] = created
    yield name
    for database in [*created, name]:
        _admin_execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a new, migrated, empty database of the given backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / f"test_{next(_counter)}.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"{_prefix}_{next(_counter)}"
    _admin_execute(f"CREATE DATABASE {name} TEMPLATE {template_name}")
    created = _pg_state["created"]
    assert isinstance(created, list)
    created.append(name)
    return _pg_url(name)


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
    engine = create_db_engine(db_url, pool_size=5)
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
        pool_size=5,
        log_level="WARNING",
    )
