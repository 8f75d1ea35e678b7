"""The database sessions of a request.

:func:`get_session`: the request's session on the primary, created on first use and
kept on ``request.state``; a GET's session only reads (on SQLite it does not take the
write lock); the route boundary (:class:`voucherledger.core.routing.CommittingRoute`)
commits it before the response is sent, or rolls it back on error, and closes it.

:func:`get_read_session`: for the reads that may be answered from the read replica
(``VOUCHERLEDGER_READ_DATABASE_URL``; docs/operations.md says which): a read-only
session of its own on the replica, closed when the request ends, or — with no replica
set — the request's session. Authentication and everything that must read its own
writes or takes locks stay on :func:`get_session`. A replica that cannot be reached is
a 503 ``read_replica_unavailable``, never a silent fall-back to the primary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from voucherledger.core.db import is_unavailable
from voucherledger.core.errors import ReadReplicaUnavailable


def request_session(request: Request) -> Session:
    session: Session | None = getattr(request.state, "db_session", None)
    if session is None:
        if request.method in ("GET", "HEAD"):
            session = request.app.state.session_factory(bind=request.app.state.read_engine)
        else:
            session = request.app.state.session_factory()
        request.state.db_session = session
    return session


async def get_session(request: Request) -> Session:
    """FastAPI dependency: the request's session."""
    return request_session(request)


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    """FastAPI dependency: a session for reads the replica may answer (see the module
    docstring). With a replica its connection is taken before the endpoint runs (in a
    worker thread), so a replica that is down answers 503 ``read_replica_unavailable``
    before any work; without one it costs no thread hop, like :func:`get_session`."""
    replica: Callable[[], Session] | None = request.app.state.replica_session_factory
    if replica is None:
        yield request_session(request)
        return
    session = await run_in_threadpool(open_replica_session, replica)
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


def open_replica_session(replica: Callable[[], Session]) -> Session:
    """A session of ``replica`` with its connection (and read-only transaction) begun;
    :class:`ReadReplicaUnavailable` when the replica cannot be reached."""
    session = replica()
    try:
        session.connection()
    except Exception as exc:
        session.close()
        if is_unavailable(exc):
            raise ReadReplicaUnavailable(
                "The read replica cannot be used right now; try again."
            ) from exc
        raise
    return session


def read_session_factory(request: Request, primary: Callable[[], Session]) -> Callable[[], Session]:
    """What a streamed export opens its session with: a new session on the replica
    when one is set (checked reachable first, so a replica that is down is a 503 before
    the response starts), else ``primary``. Call it in a worker thread."""
    replica: Callable[[], Session] | None = request.app.state.replica_session_factory
    if replica is None:
        return primary
    open_replica_session(replica).close()
    return replica
