"""The ``voucherledger`` console script, run as an operator would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.app import bearer, client_for
from tests.factories.ledger import open_chart, transfer
from voucherledger.core.db import create_db_engine
from voucherledger.core.settings import Settings
from voucherledger.ops.migrate import current_revision, head_revision

CLI = Path(sys.executable).parent / "voucherledger"


def run_cli(
    *args: str, database_url: str, key_file: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
    env["VOUCHERLEDGER_DATABASE_URL"] = database_url
    env["VOUCHERLEDGER_SIGNING_KEY_FILE"] = str(key_file)
    result = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(CLI), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, (result.stdout, result.stderr)
    return result


@pytest.mark.slow  # starts the console script more than once
def test_db_upgrade_migrates_an_empty_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    path.touch()
    url = f"sqlite:///{path}"
    run_cli("db", "upgrade", database_url=url, key_file=tmp_path / "key")
    engine = create_db_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    # Running it again is harmless.
    run_cli("db", "upgrade", database_url=url, key_file=tmp_path / "key")


def test_create_admin_prints_only_a_key_that_works(settings: Settings, tmp_path: Path) -> None:
    result = run_cli(
        "keys",
        "create-admin",
        "--name",
        "Night operator",
        database_url=settings.database_url,
        key_file=tmp_path / "key",
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert result.stdout == lines[0] + "\n"
    key = lines[0]
    assert re.fullmatch(r"vl_key_[0-9A-Z]{26}_[0-9a-f]{64}", key)
    assert key not in result.stderr  # shown once, on stdout only
    with client_for(settings) as client:
        me = client.get("/v1/me", headers=bearer(key))
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "admin"
        assert me.json()["name"] == "Night operator"
        # It is a working admin key: it can create accounts.
        created = client.post(
            "/v1/accounts", headers=bearer(key), json={"kind": "funder", "name": "F"}
        )
        assert created.status_code == 201


@pytest.mark.slow  # starts the console script more than once
def test_two_admins_get_different_keys(settings: Settings, tmp_path: Path) -> None:
    first = run_cli(
        "keys", "create-admin", database_url=settings.database_url, key_file=tmp_path / "key"
    ).stdout.strip()
    second = run_cli(
        "keys", "create-admin", database_url=settings.database_url, key_file=tmp_path / "key"
    ).stdout.strip()
    assert first != second
    with client_for(settings) as client:
        ids = {client.get("/v1/me", headers=bearer(k)).json()["id"] for k in (first, second)}
        assert len(ids) == 2


@pytest.mark.slow  # starts the console script more than once
def test_seal_then_verify(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    key_file = tmp_path / "signing-key"
    url = settings.database_url
    open_chart(session_factory, ["programme:p1:unissued", "voucher:v1"])
    transfer(session_factory, "funder:f1", "programme:p1:unissued", 10_000, kind="deposit")
    transfer(session_factory, "programme:p1:unissued", "voucher:v1", 2_500, kind="issue")

    sealed = run_cli("seal", database_url=url, key_file=key_file)
    assert sealed.stdout.startswith("sealed 2 transaction(s); head: height ")
    assert len(sealed.stdout.splitlines()) == 1  # log lines go to stderr
    assert "development_signing_key_generated" in sealed.stderr
    assert key_file.exists()  # the development key was generated once and kept

    verified = run_cli("verify", database_url=url, key_file=key_file)
    assert verified.stdout.startswith("OK 2 sealed transaction(s)")

    # Nothing new to seal; a later transaction is sealed by the next run.
    assert run_cli("seal", database_url=url, key_file=key_file).stdout.startswith(
        "sealed 0 transaction(s)"
    )
    transfer(session_factory, "voucher:v1", "programme:p1:unissued", 500, kind="revoke")
    assert run_cli("seal", database_url=url, key_file=key_file).stdout.startswith(
        "sealed 1 transaction(s)"
    )
    assert run_cli("verify", database_url=url, key_file=key_file).stdout.startswith(
        "OK 3 sealed transaction(s)"
    )


def test_verify_on_an_empty_ledger_is_ok(settings: Settings, tmp_path: Path) -> None:
    result = run_cli("verify", database_url=settings.database_url, key_file=tmp_path / "k")
    assert result.stdout.startswith("OK 0 sealed transaction(s)")


@pytest.mark.parametrize("args", [(), ("db",), ("keys",)], ids=["top", "db", "keys"])
def test_help_lists_commands(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_cli(
        *args, "--help", database_url=f"sqlite:///{tmp_path / 'x.db'}", key_file=tmp_path / "k"
    )
    assert "Usage" in result.stdout


@pytest.mark.slow  # starts the console script more than once
def test_sweep_expires_vouchers_past_their_expiry(settings: Settings, tmp_path: Path) -> None:
    """`voucherledger sweep` (for cron) does what POST /programmes/{id}/sweep does."""
    import time
    from datetime import UTC, datetime, timedelta

    from tests.factories.accounts import make_party
    from tests.factories.app import admin_headers

    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        group = make_party(client, admin, "group")
        programme = client.post(
            "/v1/programmes",
            headers=funder.headers,
            json={"name": "P", "currency": "EUR", "service_categories": ["leadership"]},
        ).json()["id"]
        deposit = client.post(
            f"/v1/programmes/{programme}/deposits",
            headers=funder.headers,
            json={"amount": 5_000, "reference": "r"},
        )
        assert deposit.status_code == 201
        soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        voucher = client.post(
            f"/v1/programmes/{programme}/vouchers",
            headers=funder.headers,
            json={"group_id": group.id, "amount": 1_200, "expires_at": soon},
        ).json()["id"]
        keep = client.post(
            f"/v1/programmes/{programme}/vouchers",
            headers=funder.headers,
            json={"group_id": group.id, "amount": 300},
        ).json()["id"]
        time.sleep(1.2)
        result = run_cli("sweep", database_url=settings.database_url, key_file=tmp_path / "k")
        assert "expired 1 voucher(s)" in result.stdout
        expired = client.get(f"/v1/vouchers/{voucher}", headers=funder.headers).json()
        assert (expired["status"], expired["balance"]) == ("expired", 0)
        assert client.get(f"/v1/vouchers/{keep}", headers=funder.headers).json()["status"] == (
            "active"
        )
        balances = client.get(f"/v1/programmes/{programme}", headers=funder.headers).json()[
            "balances"
        ]
        assert balances["unissued"] == 5_000 - 300
        # Sweeping again finds nothing more to do.
        again = run_cli("sweep", database_url=settings.database_url, key_file=tmp_path / "k")
        assert "expired 0 voucher(s)" in again.stdout


def test_serve_passes_the_header_limit_to_uvicorn(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from voucherledger import cli
    from voucherledger.core import settings as settings_module

    ran: dict[str, object] = {}
    limited = settings.model_copy(update={"max_header_bytes": 12_345})
    monkeypatch.setattr(settings_module, "get_settings", lambda: limited)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: ran.update(kwargs))
    result = CliRunner().invoke(cli.app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert ran["h11_max_incomplete_event_size"] == 12_345
