"""The process uvicorn serves has its garbage collector tuned once the app is built:
start-up's objects frozen out of the scans, the youngest generation collected every
20,000 allocations (docs/performance.md: the default made the claim's tail slower)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_served_process_has_its_collector_tuned(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
    env.update(
        {
            "PYTHONPATH": str(SRC),
            "VOUCHERLEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'vl.db'}",
            "VOUCHERLEDGER_SIGNING_KEY_FILE": str(tmp_path / "signing.key"),
        }
    )
    probe = (
        "import gc, voucherledger.asgi as a; "
        "print(gc.get_threshold() == a.GC_THRESHOLDS, gc.get_freeze_count() > 10000)"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
