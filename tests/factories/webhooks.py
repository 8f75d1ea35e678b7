"""A real HTTP receiver on 127.0.0.1 for webhook tests, and a movable clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from voucherledger.core import events
from voucherledger.core.db import transaction


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the receiver got; ``mode`` says how it answers: ``ok``, ``fail`` (500),
    ``slow`` (sleeps ``delay`` first), ``redirect`` (302), ``big`` (a large body),
    ``hold`` (waits until ``release`` is set, then answers 200), ``trickle`` (a 200
    whose headers come one line every 0.2 s, for ``delay`` seconds), ``close`` (a 200
    with ``Connection: close``)."""

    url: str = ""
    mode: str = "ok"
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def receiver(mode: str = "ok") -> Iterator[Receiver]:
    state = Receiver(mode=mode)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            state.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            state.started.set()
            if state.mode == "hold":
                state.release.wait(30)
            if state.mode == "slow":
                time.sleep(state.delay)
            if state.mode == "trickle":
                self._trickle(state.delay)
                return
            status = {"fail": 500, "redirect": 302}.get(state.mode, 200)
            payload = b"x" * 1_000_000 if state.mode == "big" else b"ok"
            try:
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", state.url + "/elsewhere")
                self.send_header("Content-Length", str(len(payload)))
                if state.mode == "close":
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass

        def _trickle(self, seconds: float) -> None:
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                ends = time.monotonic() + seconds
                while time.monotonic() < ends and not state.release.is_set():
                    self.wfile.write(b"X-Slow: 1\r\n")
                    self.wfile.flush()
                    time.sleep(0.2)
                self.wfile.write(b"Content-Length: 0\r\n\r\n")
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


class Clock:
    """A clock the test moves."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def emit_for(factory: sessionmaker[Session], account_id: str, n: int = 1) -> list[str]:
    """Emit ``n`` events readable by the account, committed."""
    ids = []
    with transaction(factory) as session:
        for i in range(n):
            ids.append(
                events.emit(
                    session,
                    "programme.updated",
                    {"object": {"id": f"prg_{i}", "n": i}},
                    account_ids=[account_id],
                )
            )
    return ids
