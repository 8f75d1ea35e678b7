"""The dependency rule holds (``lint-imports``), and the contracts would catch a
reintroduced circle or an upward import: they are run on a copy of the package with
one bad import added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(  # noqa: S603 - our own linter on our own config
        [str(LINT_IMPORTS), "--config", str(CHECKOUT / "pyproject.toml"), "--no-cache"],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _copy_with(tmp_path: Path, module: str, line: str) -> Path:
    src = tmp_path / "src"
    shutil.copytree(
        CHECKOUT / "src" / "voucherledger",
        src / "voucherledger",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    target = src / "voucherledger" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    return src


def test_the_package_keeps_its_contracts() -> None:
    result = _lint(CHECKOUT / "src")
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "arrow"),
    [
        # The circle issue 8 removed: vouchers and redemptions importing each other.
        (
            "vouchers/service.py",
            "from voucherledger.redemptions import service as _redemptions  # noqa",
            "voucherledger.vouchers.service -> voucherledger.redemptions.service",
        ),
        # core reaching up into the ledger.
        (
            "core/money.py",
            "from voucherledger.ledger import canonical as _canonical  # noqa",
            "voucherledger.core.money -> voucherledger.ledger.canonical",
        ),
        # A domain reaching up into reporting.
        (
            "programmes/service.py",
            "from voucherledger.reporting import report as _report  # noqa",
            "voucherledger.programmes.service -> voucherledger.reporting.report",
        ),
    ],
    ids=["circle", "core-up", "domain-up"],
)
def test_the_layers_contract_refuses_an_upward_import(
    tmp_path: Path, module: str, line: str, arrow: str
) -> None:
    result = _lint(_copy_with(tmp_path, module, line))
    assert result.returncode != 0, result.stdout
    assert "Layers: entry points > app" in result.stdout
    assert "BROKEN" in result.stdout
    assert arrow in result.stdout
