"""The Makefile's targets that take settings from the command line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]


def _dry_run(*args: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    result = subprocess.run(  # noqa: S603 - make, fixed arguments, dry run only
        [make, "--no-print-directory", "-n", *args],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_serves_on_127_0_0_1_port_8000_by_default() -> None:
    assert "serve --host 127.0.0.1 --port 8000" in _dry_run("run")


def test_make_run_takes_host_and_port() -> None:
    out = _dry_run("run", "HOST=0.0.0.0", "PORT=9123")
    assert "serve --host 0.0.0.0 --port 9123" in out
    assert "db upgrade" in out
