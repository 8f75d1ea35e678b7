"""Read-replica routing (``VOUCHERLEDGER_READ_DATABASE_URL``) against a real streaming
replica (``tools/pg_replica.sh``): the exports, the checkpoint, the programme report
and the journal's list and trial balance answer from the replica — proved by pausing
its replay, when they keep answering what it had while the claims, issuance and point
reads go on on the primary — writes never go there, results equal the primary's once
replayed, and a replica that is down is a 503 ``read_replica_unavailable`` for the
routed reads only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from tests.conftest import TEST_SIGNING_KEY, fresh_database, require_postgres
from tests.factories.app import client_for
from tests.factories.programmes import assert_problem, issue
from tests.factories.redemptions import Cast, claim, claim_programme, get_claim, make_cast
from tests.factories.replica import (
    paused_replay,
    read_connections,
    replica_lock,
    replica_url,
    require_replica,
    wait_for_replay,
)
from tests.test_cli import run_cli
from voucherledger import chart
from voucherledger.core.db import create_read_engine
from voucherledger.core.settings import Settings
from voucherledger.ledger.verify import verify_lines


def _settings(url: str, read_url: str | None = None) -> Settings:
    return Settings(
        database_url=url,
        read_database_url=read_url,
        signing_key=TEST_SIGNING_KEY,
        signing_key_file=Path("/nonexistent/unused-key"),
        sealer_enabled=False,
        sweep_enabled=False,
        webhook_delivery_enabled=False,
        pool_size=2,
        log_level="WARNING",
    )


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    require_postgres()
    return fresh_database("postgresql", request, tmp_path)


@pytest.fixture
def on_replica(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, TestClient, str]]:
    """(an app reading from the replica, an app on the primary alone, the database URL)
    over one fresh database, once the replica has it."""
    require_postgres()
    require_replica()
    with replica_lock(tmp_path_factory.getbasetemp().parent):
        url = fresh_database("postgresql", request, tmp_path)
        wait_for_replay()  # the new database exists on the replica
        with (
            client_for(_settings(url, replica_url(url))) as routed,
            client_for(_settings(url)) as primary,
        ):
            yield routed, primary, url


def _manifest_of_jsonl(body: bytes) -> tuple[list[str], dict[str, Any]]:
    lines = body.decode().splitlines()
    manifest: dict[str, Any] = json.loads(lines[-1])
    assert manifest["type"] == "manifest"
    return lines, manifest


def _routed_reads(client: TestClient, c: Cast, pid: str) -> dict[str, Any]:
    """What every routed endpoint answers, less what differs by the clock alone."""
    got: dict[str, Any] = {}
    # Seals on the primary, answers the latest block where the exports read.
    checkpoint = client.get("/v1/audit/checkpoint", headers=c.auditor.headers)
    assert checkpoint.status_code == 200, checkpoint.text
    got["checkpoint"] = checkpoint.json()
    listed = client.get(
        "/v1/ledger/transactions", params={"programme_id": pid}, headers=c.auditor.headers
    )
    assert listed.status_code == 200, listed.text
    got["list"] = [t["id"] for t in listed.json()["data"]]
    by_sequence = client.get(
        "/v1/ledger/transactions", params={"after_sequence": 0}, headers=c.auditor.headers
    )
    assert by_sequence.status_code == 200, by_sequence.text
    got["by_sequence"] = [t["id"] for t in by_sequence.json()["data"]]
    trial = client.get(
        "/v1/ledger/trial-balance", params={"programme_id": pid}, headers=c.auditor.headers
    )
    assert trial.status_code == 200, trial.text
    got["trial_balance"] = trial.json()
    report = client.get(f"/v1/programmes/{pid}/report", headers=c.funder.headers)
    assert report.status_code == 200, report.text
    got["report"] = {k: v for k, v in report.json().items() if k != "generated_at"}
    jsonl = client.get("/v1/audit/export", params={"programme_id": pid}, headers=c.auditor.headers)
    assert jsonl.status_code == 200, jsonl.text
    lines, manifest = _manifest_of_jsonl(jsonl.content)
    # The export verifies against the checkpoint taken before it.
    result = verify_lines(iter(lines), checkpoint=got["checkpoint"])
    assert result.ok, result
    got["jsonl"] = {k: v for k, v in manifest.items() if k not in ("exported_at", "signature")}
    csv = client.get(
        "/v1/audit/export", params={"programme_id": pid, "format": "csv"}, headers=c.auditor.headers
    )
    assert csv.status_code == 200, csv.text
    got["csv_rows"] = csv.text.count("\r\n")
    iati = client.get(
        "/v1/audit/export", params={"programme_id": pid, "format": "iati"}, headers=c.funder.headers
    )
    assert iati.status_code == 200, iati.text
    found = re.search(rb"<!-- voucherledger-manifest (.*) -->", iati.content)
    assert found is not None
    got["iati"] = json.loads(found.group(1))
    return got


def _seal(client: TestClient, c: Cast) -> int:
    """Seal everything pending (on the primary); the height it reached."""
    checkpoint = client.get("/v1/audit/checkpoint", headers=c.auditor.headers)
    assert checkpoint.status_code == 200, checkpoint.text
    height: int = checkpoint.json()["height"]
    return height


def _held(client: TestClient, c: Cast, voucher_id: str) -> int:
    response = client.get(
        f"/v1/ledger/accounts/{chart.held(voucher_id)}/balance", headers=c.funder.headers
    )
    assert response.status_code == 200, response.text
    balance: int = response.json()["balance"]
    return balance


def test_routed_reads_answer_from_the_replica_while_writes_go_to_the_primary(
    on_replica: tuple[TestClient, TestClient, str],
) -> None:
    routed, primary, url = on_replica
    c = make_cast(routed)
    pid = claim_programme(routed, c, accredit_for=(c.supplier,))["id"]
    first = issue(routed, c.manager, pid, c.group.id, 10_000)
    claim(routed, c.supplier, first["code"], 4_000)
    height = _seal(primary, c)  # the routed checkpoint may lag: read where it sealed
    wait_for_replay()
    before = _routed_reads(routed, c, pid)
    assert before == _routed_reads(primary, c, pid)
    assert before["jsonl"]["block_height"] == before["checkpoint"]["height"] == height
    assert before["jsonl"]["transactions"] == len(before["list"])
    # The read engine's connections are on the replica, none on the primary.
    database = make_url(url).database
    assert database is not None
    assert read_connections(replica_url(url), database) >= 1
    assert read_connections(url, database) == 0

    with paused_replay():
        # Writes go on with the replica set (and frozen): issuance, a claim, sealing.
        second = issue(routed, c.manager, pid, c.group.id, 5_000)
        made = claim(routed, c.supplier, second["code"], 2_000)
        sealed = _seal(primary, c)
        assert sealed > height
        # The reads that stay on the primary see them at once...
        assert get_claim(routed, c.supplier, made["id"])["amount"] == 2_000
        assert abs(_held(routed, c, second["id"])) == 2_000
        # ...the routed ones answer what the replica had, still a verifiable export
        # that says the height it covers.
        assert _routed_reads(routed, c, pid) == before
        assert _routed_reads(primary, c, pid) != before

    wait_for_replay()
    after = _routed_reads(routed, c, pid)
    assert after == _routed_reads(primary, c, pid)
    assert after["jsonl"]["block_height"] == after["checkpoint"]["height"] == sealed
    assert len(after["list"]) > len(before["list"])


def test_a_write_on_the_read_engine_is_refused_even_on_the_primary(pg_url: str) -> None:
    """A write routed to the read engine by mistake fails: read-only transactions,
    whatever server the URL names (on a standby it would fail anyway)."""
    engine = create_read_engine(pg_url, pool_size=1)
    try:
        with engine.connect() as connection:
            isolation = connection.execute(text("SHOW transaction_isolation")).scalar()
            assert isolation == "repeatable read"
            with pytest.raises(DBAPIError) as refused:
                connection.execute(text("CREATE TABLE misrouted (id integer)"))
            assert (
                getattr(refused.value.orig, "sqlstate", None) == "25006"
            )  # read_only_sql_transaction
    finally:
        engine.dispose()


def test_a_replica_that_is_down_is_503_for_the_routed_reads_only(pg_url: str) -> None:
    """Nothing listens on the replica's port: the routed reads answer 503
    read_replica_unavailable (before any byte of an export), everything else works."""
    down = make_url(pg_url).set(port=1).render_as_string(hide_password=False)
    with client_for(_settings(pg_url, down)) as client:
        c = make_cast(client)
        pid = claim_programme(client, c, accredit_for=(c.supplier,))["id"]
        voucher = issue(client, c.manager, pid, c.group.id, 10_000)
        made = claim(client, c.supplier, voucher["code"], 3_000)
        assert get_claim(client, c.supplier, made["id"])["amount"] == 3_000
        assert abs(_held(client, c, voucher["id"])) == 3_000
        for path, params, party in (
            ("/v1/ledger/transactions", {"programme_id": pid}, c.auditor),
            ("/v1/ledger/trial-balance", {"programme_id": pid}, c.auditor),
            ("/v1/audit/checkpoint", {}, c.auditor),
            (f"/v1/programmes/{pid}/report", {}, c.funder),
            ("/v1/audit/export", {"programme_id": pid}, c.auditor),
            ("/v1/audit/export", {"programme_id": pid, "format": "csv"}, c.auditor),
            ("/v1/audit/export", {"programme_id": pid, "format": "360giving"}, c.funder),
        ):
            response = client.get(path, params=params, headers=party.headers)
            assert_problem(response, 503, "read_replica_unavailable")
            assert response.headers["Retry-After"] == "2"


def test_without_a_replica_everything_reads_from_the_primary(pg_url: str) -> None:
    with client_for(_settings(pg_url)) as client:
        assert client.app.state.replica_session_factory is None  # type: ignore[attr-defined]
        c = make_cast(client)
        pid = claim_programme(client, c)["id"]
        listed = client.get(
            "/v1/ledger/transactions", params={"programme_id": pid}, headers=c.auditor.headers
        )
        assert listed.status_code == 200, listed.text
        assert listed.json()["data"]


@pytest.mark.parametrize(
    ("primary", "replica", "named"),
    [
        ("sqlite:///./voucherledger.db", "postgresql://postgres@127.0.0.1:5433/db", "DATABASE_URL"),
        ("postgresql://postgres@127.0.0.1/db", "sqlite:///./replica.db", "READ_DATABASE_URL"),
    ],
)
def test_a_read_replica_is_refused_with_sqlite(primary: str, replica: str, named: str) -> None:
    with pytest.raises(ValidationError) as refused:
        _settings(primary, replica)
    message = str(refused.value)
    assert f"VOUCHERLEDGER_{named} is not one" in message
    assert "PostgreSQL" in message


def test_serve_refuses_a_read_replica_with_sqlite_in_one_line(tmp_path: Path) -> None:
    """The refusal names the setting and the reason, never the URL (it may hold a
    password); before, only pydantic's first line came out (``1 validation error``)."""
    result = run_cli(
        "serve",
        database_url=f"sqlite:///{tmp_path / 'vl.db'}",
        key_file=tmp_path / "key",
        check=False,
        extra_env={"VOUCHERLEDGER_READ_DATABASE_URL": "postgresql://vl:s3cret@replica/db"},
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "Invalid setting: VOUCHERLEDGER_READ_DATABASE_URL needs a PostgreSQL primary"
    ), result.stderr
    assert "VOUCHERLEDGER_DATABASE_URL is not one" in result.stderr
    assert "s3cret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
