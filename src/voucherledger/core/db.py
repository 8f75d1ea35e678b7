"""Database engine, sessions and the declarative base.

One engine per process. SQLite (the zero-set-up default) runs in WAL mode with
``BEGIN IMMEDIATE`` so that write transactions take the write lock up front and
never fail half-way on a lock upgrade; PostgreSQL (production) uses psycopg 3.

Services and repositories never commit: the request boundary does
(:class:`voucherledger.core.routing.CommittingRoute`), the CLI does, tests do.
The few statements that bypass the ORM go through :mod:`voucherledger.core.rawsql`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC: stored without zone, returned zone-aware.

    Stored the same way on SQLite and PostgreSQL so that comparisons (``as_of``)
    and the canonical form of journal transactions are identical on both.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalise_url(url: str) -> str:
    """Map the plain URLs users write to the drivers the service uses."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def create_db_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int | None = None,
    pool_timeout: float = 30.0,
) -> Engine:
    """The process's engine. On PostgreSQL a pool of ``pool_size`` connections kept
    open plus up to ``max_overflow`` (default: ``pool_size``) opened under load, so at
    most ``pool_size + max_overflow`` at once; a request waits ``pool_timeout`` seconds
    for one, then answers 503. A connection is not pinged when taken from the pool
    (that was a round trip per request): one the server closed (restart,
    ``pg_terminate_backend``, failover) fails at its first statement, which renews the
    pool, and the request is run again (``core/routing.py``); the background loops try
    again on their next round."""
    full = normalise_url(url)
    if is_sqlite(full):
        engine = create_engine(full, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(
        full,
        **_postgres_pool(pool_size, max_overflow, pool_timeout),
        connect_args={"application_name": "voucherledger", "connect_timeout": 10},
    )


def _postgres_pool(
    pool_size: int, max_overflow: int | None, pool_timeout: float, *, pre_ping: bool = False
) -> dict[str, Any]:
    return {
        "pool_size": pool_size,
        "max_overflow": pool_size if max_overflow is None else max_overflow,
        "pool_timeout": pool_timeout,
        "pool_pre_ping": pre_ping,
        "pool_recycle": 1800,
    }


READ_APPLICATION_NAME = "voucherledger-read"


def create_read_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int | None = None,
    pool_timeout: float = 30.0,
) -> Engine:
    """The engine of the read replica (``VOUCHERLEDGER_READ_DATABASE_URL``), PostgreSQL
    only, pooled as :func:`create_db_engine`. Every transaction on it is read-only
    (``default_transaction_read_only``: a write routed here by mistake fails, even on a
    URL that names the primary) and ``REPEATABLE READ``: all the statements of one
    request, an export's chunks and its manifest among them, read one snapshot (a hot
    standby allows it; it refuses ``SERIALIZABLE``). Its connections are named
    :data:`READ_APPLICATION_NAME` in ``pg_stat_activity``."""
    full = normalise_url(url)
    if is_sqlite(full):
        raise ValueError("a read replica must be PostgreSQL")
    return create_engine(
        full,
        # Pinged when taken: its reads (exports, reports) are few and long, and a
        # replica restarted under them would otherwise fail the next one.
        **_postgres_pool(pool_size, max_overflow, pool_timeout, pre_ping=True),
        isolation_level="REPEATABLE READ",
        connect_args={
            "application_name": READ_APPLICATION_NAME,
            "connect_timeout": 10,
            "options": "-c default_transaction_read_only=on",
        },
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN IMMEDIATE
        # below is what actually starts each transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # INSERT OR REPLACE deletes the row it replaces; only with recursive triggers
        # does that delete meet the append-only DELETE triggers (and is refused).
        cursor.execute("PRAGMA recursive_triggers=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front; readers (see ``read_only``) do not, so
        # in WAL mode they never wait for, or hold up, a writer.
        mode = "DEFERRED" if conn.get_execution_options().get("read_only") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


def read_only(engine: Engine) -> Engine:
    """The same engine (and pool) for transactions that only read."""
    return engine.execution_options(read_only=True)


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


MAX_ATTEMPTS = 3
# PostgreSQL's serialization_failure and deadlock_detected: the database rolled the
# transaction back and asks for it to be run again. The write paths lock in a fixed
# order so these should not happen; this keeps them from ever reaching a client.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def write_after(session: Session, write: Callable[[Connection], None], what: str) -> None:
    """Run ``write`` in a short transaction of its own once ``session``'s transaction
    has ended, whether it is rolled back (as a refused request's is), committed or
    closed: what a refusal must remember (a failed look-up, a failed sign-in) cannot
    be written in the transaction that is rolled back. On SQLite that transaction
    holds the write lock until it ends, so writing earlier from another connection
    would wait on it. A failure to write is logged as ``what``; the refusal stands."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    done = False

    def record(_session: Session, transaction: SessionTransaction) -> None:
        nonlocal done
        if done or transaction.parent is not None:
            return  # a savepoint or inner transaction ended, not the session's own
        done = True  # listeners cannot be removed while the event runs
        try:
            with engine.begin() as connection:
                write(connection)
        except Exception:  # losing one count is logged, never raised into the request
            structlog.get_logger("voucherledger.db").exception(what)

    listener: Any = record
    event.listen(session, "after_transaction_end", listener)


def is_transient(exc: BaseException) -> bool:
    """The database rolled the whole transaction back and asks for it to be run again."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(original, "sqlstate", None) in _TRANSIENT_SQLSTATES


def backoff(attempt: int) -> float:
    """Seconds to wait before running attempt ``attempt + 1``: a few ms, jittered."""
    return random.uniform(0.001, 0.01) * attempt  # noqa: S311 - jitter, not a secret


def run_retrying(work: Callable[[], T], *, attempts: int = MAX_ATTEMPTS) -> T:
    """``work()`` (which runs one whole transaction), run again up to ``attempts`` times
    in all while the database rolls it back as a deadlock or serialization failure; the
    retry the API's route class does, for the CLI."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except Exception as exc:
            if attempt >= attempts or not is_transient(exc):
                raise
        time.sleep(backoff(attempt))
    raise RuntimeError("unreachable")


# SQLSTATE classes of a database that is down or refuses work for now: 08 connection
# exception, 53 insufficient resources (53300 too many connections), 57P admin or
# crash shutdown and "cannot connect now".
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")


def is_disconnect(exc: BaseException) -> bool:
    """The statement failed because its connection died (SQLAlchemy invalidated it)."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be used right now: unreachable, connection lost, refusing
    connections, shutting down, or no pooled connection free in ``pool_timeout``."""
    if isinstance(exc, PoolTimeout) or is_disconnect(exc):
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is None:  # no server answer at all: refused, reset, timed out
        return True
    return str(sqlstate).startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)
