"""The database session of a request.

Created on first use and kept on ``request.state``; a GET's session only reads (on
SQLite it does not take the write lock); the route boundary
(:class:`voucherledger.core.routing.CommittingRoute`) commits it before the
response is sent, or rolls it back on error, and closes it.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session


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
