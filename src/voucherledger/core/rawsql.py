"""The raw path: the few hot statements that go straight to the DB-API cursor.

On this hardware an ORM or Core round trip costs several times what the
database spends on the statement (docs/performance.md), so the statements that
every request, claim and posting runs are plain SQL sent through the session's
own connection, inside its transaction. This module is the one way to do that:

- **One placeholder style**: ``?``, in every raw statement on both databases.
  For psycopg a statement's text is converted once to ``%s`` (a literal ``%``
  doubled) and cached. A raw statement therefore must not contain ``?`` other
  than as a placeholder (no ``?`` in string literals, no ``jsonb ?`` operator).
- **One binding story**: a column value goes through :func:`bind`, which gives
  it the form the ORM's column type would bind, so rows written by either path
  are identical byte for byte (the hash chain reads them back).
- **Driver differences are decided here**, twice: the placeholder style (once
  per :class:`Raw`) and SQLite's text forms of times and dates (in :func:`bind`).
  Callers whose SQL differs per database branch on :attr:`Raw.dialect` once,
  where they pick their statements.

A driver error comes out as SQLAlchemy's would (a :class:`~sqlalchemy.exc.DBAPIError`
subclass wrapping it), and a connection found dead is invalidated as SQLAlchemy does,
so callers see one kind of error whichever path ran the statement.

Values read back come in the driver's forms (text timestamps and JSON on
SQLite, ``datetime`` and parsed JSON from psycopg): :func:`from_db_time` and
:func:`from_db_json` take either.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session

_PG_SQL: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    converted = _PG_SQL.get(sql)
    if converted is None:
        converted = _PG_SQL[sql] = sql.replace("%", "%%").replace("?", "%s")
    return converted


def bind(dialect: str, value: Any) -> Any:
    """A column value as the ORM's column type binds it.

    - ``datetime`` (a :class:`~voucherledger.core.db.UTCDateTime` column): naive
      UTC; on SQLite the text SQLAlchemy writes, always with microseconds;
    - ``date``: on SQLite its ISO text;
    - ``list`` or ``dict`` (a ``JSON`` column; the schema has no array columns):
      ``json.dumps``, as SQLAlchemy's JSON type does;
    - anything else (text, integers, booleans, None) as it is.

    Apply it to column values, not to the array parameters of an ``unnest``
    statement: those are built from bound values.
    """
    if isinstance(value, list | dict):
        return json.dumps(value)
    if not isinstance(value, date):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:  # as UTCDateTime refuses it: never guess a zone
            raise ValueError("naive datetime given where UTC is required")
        value = value.astimezone(UTC).replace(tzinfo=None)
        # isoformat pads the year to four digits, as SQLAlchemy's SQLite DATETIME does
        # (strftime("%Y") does not on Linux), so text times sort as instants.
        return value.isoformat(" ", "microseconds") if dialect == "sqlite" else value
    return value.isoformat() if dialect == "sqlite" else value


def from_db_time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC)


def from_db_json(value: Any) -> Any:
    """JSON columns come back parsed from psycopg and as text from sqlite3."""
    return json.loads(value) if isinstance(value, str) else value


class Raw:
    """A DB-API cursor on the session's connection, in the session's transaction.

    Use as a context manager (the cursor is closed at the end); run several
    statements on one to save creating a cursor per statement.
    """

    __slots__ = ("_connection", "_cursor", "_postgresql", "dialect")

    def __init__(self, session: Session) -> None:
        connection = session.connection()
        self._connection: Connection = connection
        self.dialect: str = connection.dialect.name
        self._postgresql = self.dialect == "postgresql"
        self._cursor = connection.connection.cursor()

    def __enter__(self) -> Raw:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._cursor.close()

    def _sql(self, sql: str) -> str:
        return _pg_sql(sql) if self._postgresql else sql

    def bind(self, value: Any) -> Any:
        return bind(self.dialect, value)

    def _wrapped(self, exc: Any, sql: str, params: Any) -> StatementError:
        """The driver's error as SQLAlchemy raises it; a dead connection invalidated."""
        dialect = self._connection.dialect
        dead = dialect.is_disconnect(exc, self._connection.connection.dbapi_connection, None)
        if dead:
            # As SQLAlchemy's own statement path does: every connection of the pool
            # opened before now is replaced when next taken (the server that closed this
            # one restarted, most likely, and closed them all), then this one is dropped.
            self._connection.engine.pool._invalidate(
                self._connection.connection, exc, _checkin=False
            )
            self._connection.invalidate(exc)
        error: StatementError = DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=dead,
            dialect=dialect,
        )
        return error

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self._cursor.execute(self._sql(sql), params)
        except self._connection.dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(exc, sql, params) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._cursor.executemany(self._sql(sql), rows)
        except self._connection.dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(exc, sql, rows) from exc

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row (a tuple) of the statement's result, or None."""
        self.execute(sql, params)
        return self._cursor.fetchone()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.execute(sql, params)
        return list(self._cursor.fetchall())


@functools.cache
def _pipeline_supported() -> bool:
    """psycopg's pipeline mode needs libpq 14 or newer (``psycopg[binary]`` bundles one);
    with an older one the statements go one by one."""
    import psycopg  # only PostgreSQL gets here

    return bool(psycopg.Pipeline.is_supported())


class Pipeline(Raw):
    """A :class:`Raw` whose statements are sent together when it ends: on PostgreSQL
    in psycopg's pipeline mode, one network round trip for all of them (SQLite has
    none to save: it runs them one by one). For statements whose results nobody
    reads (inserts); an error of any of them is raised at the end, as SQLAlchemy's
    would be."""

    __slots__ = ("_pipeline",)

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._pipeline: Any = None

    def __enter__(self) -> Pipeline:
        if self._postgresql and _pipeline_supported():
            self._pipeline = self._connection.connection.dbapi_connection.pipeline()  # type: ignore[union-attr]
            self._pipeline.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._pipeline is not None:
                try:
                    self._pipeline.__exit__(exc_type, exc, traceback)
                except self._connection.dialect.loaded_dbapi.Error as error:
                    if exc is None:
                        raise self._wrapped(error, "(pipeline)", ()) from error
        finally:
            super().__exit__(exc_type, exc, traceback)


@contextmanager
def using(session: Session, db: Raw | None) -> Iterator[Raw]:
    """``db`` when the caller has one open (a :class:`Pipeline`, say), else a
    :class:`Raw` of the session's own for the block."""
    if db is not None:
        yield db
        return
    with Raw(session) as own:
        yield own


def fetchone(session: Session, sql: str, params: Sequence[Any] = ()) -> Any:
    """One statement's first row (a tuple), or None, on a cursor of its own."""
    with Raw(session) as db:
        return db.fetchone(sql, params)


def execute(session: Session, sql: str, params: Sequence[Any] = ()) -> None:
    """One statement on a cursor of its own."""
    with Raw(session) as db:
        db.execute(sql, params)
