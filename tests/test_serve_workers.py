"""``voucherledger serve --workers 2`` whose supervisor is killed (``SIGKILL``): its
workers must not live on as orphans holding the port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.factories.server import free_port
from tests.test_cli import CLI, run_cli

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    """The worker processes (multiprocessing spawns) whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its reaping is left


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_workers_exit_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vl.db'}"
    run_cli("db", "upgrade", database_url=url, key_file=tmp_path / "k")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
    env |= {
        "VOUCHERLEDGER_DATABASE_URL": url,
        "VOUCHERLEDGER_SIGNING_KEY_FILE": str(tmp_path / "k"),
        "VOUCHERLEDGER_SEALER_ENABLED": "false",
    }
    parent = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [str(CLI), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while len(workers) < 2 or not _answers(port):
            assert parent.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve --workers 2 did not come up"
            time.sleep(0.2)
            workers = _children(parent.pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)], "orphaned workers still run"
        assert _port_free(port)
    finally:
        if _group_alive(parent.pid):  # what is left of the group this test started
            os.killpg(parent.pid, signal.SIGKILL)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
