"""A jsonl export verifies offline; any edit of it is caught and located."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories.app import client_for
from tests.factories.programmes import issue
from tests.factories.redemptions import (
    Cast,
    claim,
    claim_programme,
    decide,
    make_cast,
    refund,
    settle,
)
from voucherledger.core.settings import Settings
from voucherledger.ledger.verify import verify_lines

CLI = Path(sys.executable).parent / "voucherledger"


def _story(client: TestClient, cast: Cast) -> tuple[str, str]:
    """Two programmes of one funder, each with deposits, issuance, claims, a refund,
    a settlement and a revoke; the cast's auditor is a party of the first only."""
    first = claim_programme(client, cast, 50_000, accredit_for=(cast.supplier,))["id"]
    other = claim_programme(client, cast, 20_000, accredit_for=(cast.supplier,), auditor_ids=[])[
        "id"
    ]
    for programme in (first, other):
        voucher = issue(client, cast.funder, programme, cast.group.id, 5_000)
        spare = issue(client, cast.funder, programme, cast.group.id, 700)
        made = claim(client, cast.supplier, voucher["code"], 1_200)
        assert decide(client, cast.group, made["id"], "confirm").status_code == 200
        assert refund(client, cast.supplier, made["id"], 200).status_code == 201
        pending = claim(client, cast.supplier, voucher["code"], 300)
        assert decide(client, cast.group, pending["id"], "reject").status_code == 200
        assert settle(client, cast.funder, programme, cast.supplier.id).status_code == 201
        revoked = client.post(
            f"/v1/vouchers/{spare['id']}/revoke",
            headers=cast.funder.headers,
            json={"reason": "not needed"},
        )
        assert revoked.status_code == 200
    return first, other


def _export(client: TestClient, cast: Cast, **params: str) -> list[str]:
    response = client.get(
        "/v1/audit/export", headers=cast.auditor.headers, params={"format": "jsonl", **params}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines: list[str] = response.text.splitlines()
    return lines


@pytest.fixture
def exported(settings: Settings) -> tuple[list[str], str]:
    with client_for(settings) as client:
        cast = make_cast(client)
        first, _ = _story(client, cast)
        lines = _export(client, cast, programme_id=first)
        checkpoint = client.get("/v1/audit/checkpoint", headers=cast.auditor.headers)
        assert checkpoint.status_code == 200
    return lines, checkpoint.text


def test_an_export_verifies_and_redacts_other_programmes(
    exported: tuple[list[str], str],
) -> None:
    lines, checkpoint = exported
    kinds = [json.loads(line)["type"] for line in lines]
    assert kinds[-1] == "manifest"
    assert "redacted" in kinds  # the other programme's positions
    assert "block" in kinds
    shown = [json.loads(line) for line in lines if '"type":"transaction"' in line]
    programme_ids = {line["programme_id"] for line in shown}
    assert len(programme_ids) == 1
    result = verify_lines(iter(lines), checkpoint=json.loads(checkpoint))
    assert result.ok, result.error
    assert result.transactions == len(shown) == json.loads(lines[-1])["transactions"]


def _fails_at(lines: list[str], line_number: int | None = None) -> str:
    result = verify_lines(iter(lines))
    assert not result.ok
    if line_number is not None:
        assert result.line == line_number, result
    assert result.error
    return result.error


def test_flipping_any_byte_of_any_record_is_caught_at_that_line(
    exported: tuple[list[str], str],
) -> None:
    lines, _ = exported
    for index, line in enumerate(lines):
        if '"type":"transaction"' not in line:
            continue
        for position in (line.index('"amount":') + 9, line.index('"created_at":') + 20):
            text = line[:position] + ("7" if line[position] != "7" else "8") + line[position + 1 :]
            changed = [*lines[:index], text, *lines[index + 1 :]]
            _fails_at(changed, index + 1)


def test_deleting_swapping_or_truncating_is_caught(exported: tuple[list[str], str]) -> None:
    lines, _ = exported
    records = [i for i, line in enumerate(lines) if '"type":"transaction"' in line]
    victim = records[len(records) // 2]
    assert "sequence" in _fails_at([*lines[:victim], *lines[victim + 1 :]], victim + 1)
    a, b = records[1], records[2]
    swapped = list(lines)
    swapped[a], swapped[b] = swapped[b], swapped[a]
    _fails_at(swapped, a + 1)
    assert "truncated" in _fails_at(lines[:-1])
    assert "truncated" in _fails_at(lines[: len(lines) // 2])
    edited = json.loads(lines[-1])
    edited["transactions"] -= 1
    _fails_at([*lines[:-1], json.dumps(edited)], len(lines))


def test_the_cli_verifies_a_file_offline(exported: tuple[list[str], str], tmp_path: Path) -> None:
    lines, checkpoint = exported
    path = tmp_path / "journal.jsonl"
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "checkpoint.json").write_text(checkpoint)
    ok = subprocess.run(  # noqa: S603 - our own console script
        [str(CLI), "verify", str(path), "--checkpoint", str(tmp_path / "checkpoint.json")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK ")
    path.write_text("\n".join(lines[:-3]) + "\n")
    bad = subprocess.run(  # noqa: S603
        [str(CLI), "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert bad.returncode == 1
    assert bad.stdout.startswith("FAILED at line")


def test_an_auditor_cannot_export_a_programme_not_granted(settings: Settings) -> None:
    with client_for(settings) as client:
        cast = make_cast(client)
        _, other = _story(client, cast)
        refused = client.get(
            "/v1/audit/export", headers=cast.auditor.headers, params={"programme_id": other}
        )
        assert refused.status_code == 404
        assert refused.json()["code"] == "not_found"
        csv_export = client.get(
            "/v1/audit/export", headers=cast.funder.headers, params={"format": "csv"}
        )
        assert csv_export.status_code == 200
        rows = csv_export.text.splitlines()
        assert rows[0].startswith("transaction_id,sequence,kind")
        assert rows[-1].startswith("# manifest")
