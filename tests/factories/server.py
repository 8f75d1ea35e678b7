"""The app served for real: uvicorn on a free local port, for concurrency tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import uvicorn
from sqlalchemy.engine import make_url

from voucherledger.app import create_app
from voucherledger.core.settings import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on a free local port, in a thread; yields its base URL."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def pg_dsn(database_url: str) -> str:
    """A libpq DSN for psycopg from the service's database URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def waiting_on_locks(dsn: str) -> int:
    """How many of the service's connections are waiting on a lock right now."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'voucherledger' AND wait_event_type = 'Lock'"
        ).fetchone()
    assert row is not None
    return int(row[0])
