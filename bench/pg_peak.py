"""Run a command and report the most PostgreSQL connections it had open at once.

    .venv/bin/python bench/pg_peak.py -- make test

Every 0.2 s (by default) while the command runs, counts the established TCP
connections to the PostgreSQL port held by the command's own processes (pytest,
its xdist workers, the servers they start: found through /proc, so other people's
test runs on the same server are not counted), and, for comparison, every client
backend in ``pg_stat_activity`` on the server of ``VOUCHERLEDGER_TEST_POSTGRES_URL``.
Linux only. Exits with the command's status. A poll can miss a connection that
lived less than the interval: the peaks are lower bounds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

EVERYONE = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
ESTABLISHED = "01"


def descendants(root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def socket_inodes(pids: set[int]) -> set[str]:
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


def connections_to(port: int, inodes: set[str]) -> int:
    """Established TCP connections to ``port`` whose socket is one of ``inodes``."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == ESTABLISHED and fields[9] in inodes:
                count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between polls")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    url = make_url(
        os.environ.get(
            "VOUCHERLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        )
    )
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    port = url.port or 5432
    peaks = {"ours": 0, "server": 0}
    stop = threading.Event()
    started = time.monotonic()
    child = subprocess.Popen(command)  # noqa: S603 - the caller's own command

    def poll() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                ours = connections_to(port, socket_inodes(descendants(child.pid)))
                (everyone,) = conn.execute(EVERYONE).fetchone() or (0,)
                peaks["ours"] = max(peaks["ours"], ours)
                peaks["server"] = max(peaks["server"], int(everyone) - 1)  # not the poller
                stop.wait(args.interval)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        status = child.wait()
    finally:
        stop.set()
        poller.join(timeout=10)
    print(
        f"pg_peak: {time.monotonic() - started:.0f} s; peak PostgreSQL connections at once: "
        f"{peaks['ours']} of this command, {peaks['server']} on the whole server "
        "(other people's included)"
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
