"""The curl story of ``tools/two_person_story.sh`` against a real server: the
commands the README and the closing note show must work as printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_SIGNING_KEY
from tests.factories.server import running_server
from voucherledger.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "two_person_story.sh"
BASH = shutil.which("bash") or "/bin/bash"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("curl") is None or shutil.which("jq") is None, reason="needs curl and jq"
    ),
]


def test_a_funder_runs_a_programme_to_a_two_person_settlement(settings: Settings) -> None:
    plain_http = settings.model_copy(update={"session_cookie_secure": False})
    env = {
        **os.environ,
        "BIN": str(Path(sys.executable).parent),
        "VOUCHERLEDGER_DATABASE_URL": settings.database_url,
        "VOUCHERLEDGER_SIGNING_KEY": TEST_SIGNING_KEY,
    }
    with running_server(plain_http) as url:
        done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [BASH, str(SCRIPT), url],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    roles = [line["role"] for line in lines if "role" in line]
    assert roles == ["owner", "operator", "approver", "viewer"]
    officer, approver = lines[1]["id"], lines[2]["id"]
    refusals = [line for line in lines if line.get("status") == 403]
    assert [r["code"] for r in refusals] == ["forbidden", "forbidden"]  # viewer, proposer
    settled = next(line for line in lines if line.get("status") == "settled")
    assert (settled["proposed_by"], settled["approved_by"]) == (officer, approver)
    exported = next(line for line in lines if line.get("kind") == "settle")
    assert exported["metadata"]["proposed_by"] == officer
    assert exported["metadata"]["approved_by"] == approver
    assert exported["metadata"]["created_by"] == approver
    assert "\nOK " in "\n" + done.stdout
