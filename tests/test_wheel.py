"""The package as an operator installs it: a wheel built from the checkout, installed
into a new virtual environment outside it, run from an empty directory.

Nothing of the checkout is on the path there, so this proves the wheel carries what
the service reads from disk (the migrations, their per-dialect SQL) and that the
console script creates a database, an admin key and serves the API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.factories.server import free_port

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[1]


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - fixed arguments of our own tools
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (args, result.stdout[-4000:], result.stderr[-4000:])
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel (and its dependencies) installed."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", dist, CHECKOUT, cwd=base,
    )  # fmt: skip
    wheels = list(dist.glob("voucherledger-*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=base)
    _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheels[0], cwd=base)
    return venv


def _clean_env(workdir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VOUCHERLEDGER_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["HOME"] = str(workdir)
    return env


def test_the_wheel_carries_the_migrations_and_runs_from_an_empty_directory(
    installed: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = _clean_env(workdir)
    python = installed / "bin" / "python"
    cli = installed / "bin" / "voucherledger"

    where = _run(python, "-c", "import voucherledger; print(voucherledger.__file__)", cwd=workdir)
    assert Path(where.strip()).is_relative_to(installed), where  # not the checkout's src/
    assert "Usage" in _run(python, "-m", "voucherledger", "--help", cwd=workdir, env=env)
    # The common-password list is package data, read from the installed wheel.
    check = "from voucherledger.people.passwords import common_passwords as c; print(len(c()))"
    assert _run(python, "-c", check, cwd=workdir, env=env).strip() == "10000"

    # The default database: ./voucherledger.db in the current directory.
    _run(cli, "db", "upgrade", cwd=workdir, env=env)
    assert (workdir / "voucherledger.db").is_file()
    key = _run(cli, "keys", "create-admin", cwd=workdir, env=env).strip()
    assert key.startswith("vl_key_")

    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - the installed console script
        [str(cli), "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, server.stderr.read() if server.stderr else ""
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ok"
        me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "admin"
        # /docs works offline: the vendored Swagger UI is in the wheel.
        for asset in (
            "/docs",
            "/static/swagger-init.js",
            "/static/vendor/swagger-ui/swagger-ui-bundle.js",
            "/static/vendor/swagger-ui/swagger-ui.css",
        ):
            assert httpx.get(f"{base}{asset}", timeout=5).status_code == 200, asset
    finally:
        server.terminate()
        server.wait(timeout=30)
