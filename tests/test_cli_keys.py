"""The signing key from the command line, as a new user meets it: the development key
file named where it is; a lost key file refused until the new key is recorded with
``voucherledger keys rotate-signing``; verify listing the keys and their blocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import SIGNER, open_chart, transfer
from voucherledger.accounts.models import Account
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings
from voucherledger.ledger.export import Scope, chain_lines
from voucherledger.ledger.models import SealQueue
from voucherledger.ledger.sealer import rotate_signing_key, seal_pending
from voucherledger.ledger.signing import Signer, load_signer

CLI = Path(sys.executable).parent / "voucherledger"
NEW = Signer.from_seed(b"\x33" * 32)

pytestmark = pytest.mark.slow  # starts the console script several times


def run_cli(
    *args: str, database_url: str, key_file: Path, signing_key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
    env["VOUCHERLEDGER_DATABASE_URL"] = database_url
    env["VOUCHERLEDGER_SIGNING_KEY_FILE"] = str(key_file)
    if signing_key is not None:
        env["VOUCHERLEDGER_SIGNING_KEY"] = signing_key
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _queued(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(SealQueue)).scalar_one()


def _deposit(factory: sessionmaker[Session]) -> None:
    transfer(factory, "funder:f1", "programme:p1:unissued", 100, kind="deposit")


def test_a_lost_key_file_is_refused_until_the_new_key_is_recorded(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    url = settings.database_url
    key_file = tmp_path / "signing-key"
    open_chart(session_factory, ["programme:p1:unissued"])
    _deposit(session_factory)

    first = run_cli("seal", database_url=url, key_file=key_file)
    assert first.returncode == 0, first.stderr
    assert f"signing with the development key in {key_file.resolve()} (generated now)" in (
        first.stderr
    )
    old_key = load_signer(None, key_file).public_key_hex
    again = run_cli("seal", database_url=url, key_file=key_file)
    assert f"signing with the development key in {key_file.resolve()} (loaded)" in again.stderr

    key_file.unlink()  # as a new user would, or starting from another directory
    _deposit(session_factory)
    refused = run_cli("seal", database_url=url, key_file=key_file)
    assert refused.returncode == 1
    assert refused.stdout == ""
    message = [line for line in refused.stderr.splitlines() if "sealing refused" in line]
    assert len(message) == 1
    assert old_key in message[0]
    assert "voucherledger keys rotate-signing" in message[0]
    assert _queued(session_factory) == 1  # nothing sealed
    new_key = load_signer(None, key_file).public_key_hex  # the one generated just now

    unexplained = run_cli("keys", "rotate-signing", database_url=url, key_file=key_file)
    assert unexplained.returncode == 1
    assert "--reason" in unexplained.stderr
    rotated = run_cli(
        "keys",
        "rotate-signing",
        "--reason",
        "development key file deleted",
        database_url=url,
        key_file=key_file,
    )
    assert rotated.returncode == 0, rotated.stderr
    assert new_key in rotated.stdout
    assert run_cli("seal", database_url=url, key_file=key_file).stdout.startswith(
        "sealed 1 transaction(s)"
    )
    _deposit(session_factory)

    verified = run_cli("verify", database_url=url, key_file=key_file)
    assert verified.returncode == 0, verified.stdout
    lines = verified.stdout.splitlines()
    assert lines[0].startswith("OK 2 sealed transaction(s), head ")
    assert f"key {old_key} blocks 1-1" in lines
    assert f"key {new_key} blocks 2-2 (not endorsed: development key file deleted)" in lines
    assert "1 transaction(s) not yet sealed" in lines


def test_a_rotation_endorsed_by_the_previous_key_file(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    url = settings.database_url
    old_file, new_file = tmp_path / "old-key", tmp_path / "new-key"
    open_chart(session_factory, ["programme:p1:unissued"])
    _deposit(session_factory)
    assert run_cli("seal", database_url=url, key_file=old_file).returncode == 0
    wrong = run_cli(
        "keys", "rotate-signing", "--previous-key-file", str(tmp_path / "missing"),
        database_url=url, key_file=new_file,
    )  # fmt: skip
    assert wrong.returncode == 2
    assert "missing" in wrong.stderr
    rotated = run_cli(
        "keys", "rotate-signing", "--previous-key-file", str(old_file),
        database_url=url, key_file=new_file,
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    _deposit(session_factory)
    assert run_cli("seal", database_url=url, key_file=new_file).returncode == 0
    old_key = load_signer(None, old_file).public_key_hex
    new_key = load_signer(None, new_file).public_key_hex
    verified = run_cli("verify", database_url=url, key_file=new_file).stdout.splitlines()
    assert f"key {new_key} blocks 2-2 (endorsed by {old_key[:16]}…)" in verified
    assert "0 transaction(s) not yet sealed" in verified


def test_verify_a_file_with_several_public_keys(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    open_chart(session_factory, ["programme:p1:unissued"])
    _deposit(session_factory)
    seal_pending(session_factory, SIGNER)
    with transaction(session_factory) as session:
        rotate_signing_key(session, NEW, previous=SIGNER, reason=None)
    _deposit(session_factory)
    seal_pending(session_factory, NEW)
    path = tmp_path / "journal.jsonl"
    path.write_text(
        "".join(json.dumps(line) + "\n" for line in chain_lines(session_factory, Scope(None), NEW))
    )
    url = f"sqlite:///{tmp_path / 'none.db'}"  # never opened: the file needs no database
    both = run_cli(
        "verify", str(path), "--public-key", SIGNER.public_key_hex,
        "--public-key", NEW.public_key_hex, database_url=url, key_file=tmp_path / "k",
    )  # fmt: skip
    assert both.returncode == 0, both.stdout
    assert f"key {SIGNER.public_key_hex} blocks 1-1" in both.stdout.splitlines()
    one = run_cli(
        "verify", str(path), "--public-key", SIGNER.public_key_hex,
        database_url=url, key_file=tmp_path / "k",
    )  # fmt: skip
    assert one.returncode == 1
    assert "block 2" in one.stdout
    manifest = tmp_path / "manifest.json"
    manifest.write_text(path.read_text().splitlines()[-1])  # an auditor's earlier copy
    by_history = run_cli(
        "verify", str(path), "--key-history", str(manifest),
        database_url=url, key_file=tmp_path / "k",
    )  # fmt: skip
    assert by_history.returncode == 0, by_history.stdout
    manifest.write_text("[1, 2]")
    bad = run_cli(
        "verify", str(path), "--key-history", str(manifest),
        database_url=url, key_file=tmp_path / "k",
    )  # fmt: skip
    assert bad.returncode == 2
    assert "key history" in bad.stderr


def test_demo_with_a_bad_signing_key_writes_nothing(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    result = run_cli(
        "demo",
        database_url=settings.database_url,
        key_file=tmp_path / "k",
        signing_key="not-a-key",
    )
    assert result.returncode == 1
    assert "signing key" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    with session_factory() as session:
        assert session.execute(select(func.count()).select_from(Account)).scalar_one() == 0


def test_the_server_start_warns_about_a_key_the_chain_does_not_know(
    session_factory: sessionmaker[Session],
) -> None:
    from voucherledger.cli import key_warning

    open_chart(session_factory, ["programme:p1:unissued"])
    with session_factory() as session:
        assert key_warning(session, NEW) is None  # an empty chain: any key may start it
    _deposit(session_factory)
    seal_pending(session_factory, SIGNER)
    with session_factory() as session:
        assert key_warning(session, SIGNER) is None
        warning = key_warning(session, NEW)
    assert warning is not None
    assert NEW.public_key_hex in warning
    assert SIGNER.public_key_hex in warning
    assert "voucherledger keys rotate-signing" in warning


def test_serve_names_the_key_file_and_warns_before_serving(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The start of `voucherledger serve` in a directory whose key file is not the
    chain's: the absolute key file path, then a warning naming both keys."""
    import select

    from tests.factories.server import free_port

    open_chart(session_factory, ["programme:p1:unissued"])
    _deposit(session_factory)
    seal_pending(session_factory, SIGNER)
    key_file = tmp_path / "fresh-key"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
    env |= {
        "VOUCHERLEDGER_DATABASE_URL": settings.database_url,
        "VOUCHERLEDGER_SIGNING_KEY_FILE": str(key_file),
        "VOUCHERLEDGER_SEALER_ENABLED": "false",
    }
    process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [str(CLI), "serve", "--port", str(free_port())],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    # Raw reads of the pipe: a buffered readline() may take several lines at once,
    # after which select() no longer sees the ones it holds.
    received = b""
    try:
        assert process.stderr is not None
        for _ in range(50):  # bounded: the lines come before uvicorn starts
            complete = received.split(b"\n")[:-1]  # whole lines only
            if any(line.startswith(b"WARNING:") for line in complete):
                break
            ready, _, _ = select.select([process.stderr], [], [], 2)
            if ready:
                chunk = os.read(process.stderr.fileno(), 65536)
                if not chunk:
                    break  # the process ended
                received += chunk
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = received.decode()
    lines = text.splitlines()
    assert f"signing with the development key in {key_file.resolve()} (generated now)" in text
    warning = next(line for line in lines if line.startswith("WARNING:"))
    assert load_signer(None, key_file).public_key_hex in warning
    assert SIGNER.public_key_hex in warning
    assert "voucherledger keys rotate-signing" in warning
