"""Run a command and report the most PostgreSQL connections that were open at once.

    .venv/bin/python bench/pg_peak.py -- make test

Polls ``pg_stat_activity`` every 0.2 s (by default) while the command runs, on the
server of ``VOUCHERLEDGER_TEST_POSTGRES_URL``, and prints two peaks: every client
backend on the server (other people's included), and those on the test databases
(``vl_test_*``). Exits with the command's status. A poll can miss a connection that
lived less than the interval: the peak is a lower bound.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time

import psycopg
from sqlalchemy.engine import make_url

QUERY = """
SELECT count(*), count(*) FILTER (WHERE datname LIKE %s)
FROM pg_stat_activity WHERE backend_type = 'client backend'
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between polls")
    parser.add_argument("--prefix", default="vl_test_", help="test databases start with this")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    url = os.environ.get(
        "VOUCHERLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    peaks = {"all": 0, "tests": 0}
    stop = threading.Event()
    like = args.prefix.replace("_", r"\_") + "%"

    def poll() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                everyone, tests = conn.execute(QUERY, (like,)).fetchone() or (0, 0)
                peaks["all"] = max(peaks["all"], int(everyone) - 1)  # not this poller
                peaks["tests"] = max(peaks["tests"], int(tests))
                stop.wait(args.interval)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    started = time.monotonic()
    try:
        status = subprocess.call(command)  # noqa: S603 - the caller's own command
    finally:
        stop.set()
        poller.join(timeout=10)
    print(
        f"pg_peak: {time.monotonic() - started:.0f} s; peak connections at once: "
        f"{peaks['tests']} on {args.prefix}* databases, {peaks['all']} on the whole server"
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
