"""``voucherledger serve`` as an operator runs it, with stderr to a pipe (not a terminal):
one plain access line per request at the default level, no ``server`` header, and a
port that is in use refused in one line before any banner."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SIGNING_KEY
from tests.factories.server import free_port
from tests.test_cli import CLI, run_cli
from voucherledger.accounts.service import create_admin
from voucherledger.core.db import create_db_engine, create_session_factory, transaction

pytestmark = pytest.mark.slow  # a real server process


@dataclass
class Served:
    base: str
    port: int
    url: str
    process: subprocess.Popen[str]

    def stop(self) -> str:
        """Stop the server; its whole stderr."""
        self.process.terminate()
        _, stderr = self.process.communicate(timeout=30)
        return stderr


def _env(url: str, key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
    env.update(
        VOUCHERLEDGER_DATABASE_URL=url,
        VOUCHERLEDGER_SIGNING_KEY=TEST_SIGNING_KEY,
        VOUCHERLEDGER_SIGNING_KEY_FILE=str(key_file),
        VOUCHERLEDGER_SEALER_ENABLED="false",
        TERM="xterm-256color",  # colours would be on, were stderr a terminal
        FORCE_COLOR="",
    )
    env.pop("NO_COLOR", None)
    return env


@pytest.fixture(params=[False], ids=["secure"])
def served(
    sqlite_template: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Served]:
    path = tmp_path / "served.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(CLI), "serve", "--port", str(port)],
        env={
            **_env(url, tmp_path / "k"),
            **({"VOUCHERLEDGER_WEBHOOK_ALLOW_INSECURE_URLS": "true"} if request.param else {}),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    up = False
    while not up and time.monotonic() < deadline and process.poll() is None:
        try:
            up = httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            time.sleep(0.1)
    served = Served(base, port, url, process)
    try:
        assert up, served.stop()
        yield served
    finally:
        if process.poll() is None:
            served.stop()


def _fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def test_each_request_is_one_plain_access_line(served: Served) -> None:
    engine = create_db_engine(served.url, pool_size=1)
    try:
        with transaction(create_session_factory(engine)) as session:
            admin = create_admin(session, "Operator")
    finally:
        engine.dispose()
    assert admin.key is not None
    calls = [
        ("r-ok", "/healthz", {}, 200),
        ("r-me", "/v1/me", {"Authorization": f"Bearer {admin.key}"}, 200),
        ("r-401", "/v1/me", {}, 401),
        ("r-404", "/no/such/path", {}, 404),
    ]
    with httpx.Client(base_url=served.base, timeout=10) as client:
        for request_id, path, headers, status in calls:
            response = client.get(path, headers={"X-Request-ID": request_id, **headers})
            assert response.status_code == status
            assert "server" not in response.headers  # no "server: uvicorn"
            assert response.headers["x-content-type-options"] == "nosniff"
    stderr = served.stop()

    assert "\x1b[" not in stderr  # no ANSI escapes: stderr is a pipe
    access = [line for line in stderr.splitlines() if re.search(r"\brequest\b", line)]
    for request_id, _path, _headers, status in calls:
        lines = [line for line in access if f"request_id={request_id}" in line]
        assert len(lines) == 1, stderr
        fields = _fields(lines[0])
        assert fields["method"] == "GET"
        assert fields["status"] == str(status)
        assert float(fields["duration_ms"]) >= 0
        assert "info" in lines[0]
    me = _fields(next(line for line in access if "request_id=r-me" in line))
    assert me["route"] == "/v1/me"
    assert me["account_id"] == admin.account_id
    assert _fields(next(line for line in access if "request_id=r-404" in line))["route"] == (
        "unmatched"
    )
    assert "/no/such/path" not in stderr  # the template, never the raw path
    assert admin.key not in stderr


def test_serve_on_a_port_in_use_says_so_before_any_banner(served: Served, tmp_path: Path) -> None:
    result = run_cli(
        "serve",
        "--port",
        str(served.port),
        database_url=served.url,
        key_file=tmp_path / "k",
        check=False,
        extra_env={"VOUCHERLEDGER_SIGNING_KEY": TEST_SIGNING_KEY},
    )
    assert result.returncode == 1
    assert result.stderr == f"port {served.port} on 127.0.0.1 is in use\n"
    assert result.stdout == ""


@pytest.mark.parametrize("served", [False, True], ids=["secure", "insecure"], indirect=True)
def test_the_banner_warns_when_webhooks_may_reach_private_addresses(
    served: Served, request: pytest.FixtureRequest
) -> None:
    insecure = "[insecure]" in request.node.name
    stderr = served.stop()
    assert ("VOUCHERLEDGER_WEBHOOK_ALLOW_INSECURE_URLS" in stderr) is insecure, stderr
