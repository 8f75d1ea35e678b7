"""Every command that needs the database, run against one it cannot use: a missing
SQLite file, an empty (unmigrated) one, an unreachable PostgreSQL and a URL of an
unsupported database. Each says so in one line on stderr and exits non-zero, with no
traceback and no stray database file left behind."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL, require_postgres
from tests.factories.server import free_port
from tests.test_cli import run_cli

# A Python start-up per case: slow, but the point is the console script as run.
pytestmark = pytest.mark.slow

COMMANDS = {
    "serve": ("serve", "--port", "0"),
    "create-admin": ("keys", "create-admin"),
    "sweep": ("sweep",),
    "seal": ("seal",),
    "deliver": ("deliver", "--once"),
    "demo": ("demo",),
    "verify": ("verify",),
}


def _closed_port_url() -> str:
    return f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"


def _assert_one_line_failure(stderr: str, expected: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert expected in lines[0], stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_sqlite_file_is_named_and_not_created(command: str, tmp_path: Path) -> None:
    path = tmp_path / "voucherledger.db"
    result = run_cli(
        *COMMANDS[command], database_url=f"sqlite:///{path}", key_file=tmp_path / "k", check=False
    )
    assert result.returncode == 1
    _assert_one_line_failure(
        result.stderr, f"No database at {path}: run `voucherledger db upgrade`"
    )
    assert result.stdout == ""
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no database, no WAL, no signing key


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unmigrated_database_is_refused(command: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    result = run_cli(
        *COMMANDS[command], database_url=f"sqlite:///{path}", key_file=tmp_path / "k", check=False
    )
    assert result.returncode == 1
    _assert_one_line_failure(result.stderr, "is not migrated: run `voucherledger db upgrade`")
    with sqlite3.connect(path) as db:  # nothing was created in it
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


@pytest.mark.parametrize("command", [*sorted(COMMANDS), "db-upgrade"])
def test_an_unreachable_postgresql_is_named_without_its_password(
    command: str, tmp_path: Path
) -> None:
    url = _closed_port_url().replace("nobody@", "nobody:s3cret@")
    args = ("db", "upgrade") if command == "db-upgrade" else COMMANDS[command]
    result = run_cli(*args, database_url=url, key_file=tmp_path / "k", check=False)
    assert result.returncode == 1
    _assert_one_line_failure(result.stderr, "Cannot ")
    assert "127.0.0.1" in result.stderr
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize("command", [*sorted(COMMANDS), "db-upgrade"])
def test_an_unsupported_database_url_is_refused(command: str, tmp_path: Path) -> None:
    args = ("db", "upgrade") if command == "db-upgrade" else COMMANDS[command]
    result = run_cli(
        *args, database_url="mysql://root@127.0.0.1/x", key_file=tmp_path / "k", check=False
    )
    assert result.returncode == 2
    _assert_one_line_failure(result.stderr, "unsupported database 'mysql'")


def test_db_upgrade_into_a_missing_folder_says_so(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "folder" / "x.db"
    result = run_cli(
        "db", "upgrade", database_url=f"sqlite:///{path}", key_file=tmp_path / "k", check=False
    )
    assert result.returncode == 1
    _assert_one_line_failure(result.stderr, "does not exist")
    assert not (tmp_path / "no").exists()


def test_verify_of_a_missing_export_file_says_so(tmp_path: Path) -> None:
    result = run_cli(
        "verify",
        str(tmp_path / "nothing.jsonl"),
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        key_file=tmp_path / "k",
        check=False,
    )
    assert result.returncode == 2
    _assert_one_line_failure(result.stderr, "No such file")


def test_serve_refuses_to_start_when_the_database_refuses_connections(tmp_path: Path) -> None:
    """As under a loaded CI run ("too many clients"): a role whose CONNECTION LIMIT is
    reached. The server does not start; it says why, and what bounds its connections."""
    require_postgres()
    role = f"vl_no_slots_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        url = make_url(PG_ADMIN_URL).set(drivername="postgresql", username=role, password=None)
        result = run_cli(
            "serve",
            "--port",
            str(free_port()),
            database_url=url.render_as_string(hide_password=False),
            key_file=tmp_path / "k",
            check=False,
        )
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")
    assert result.returncode == 1
    _assert_one_line_failure(result.stderr, "refuses connections")
    assert "too many connections" in result.stderr
    assert "pool_size + max_overflow" in result.stderr


# --- faults of files, folders, keys and URLs ------------------------------------------

# Root (as the tests run) may write into a chmod-ed folder, so "a folder that cannot
# be written" is one that refuses root too: sysfs accepts no new files from anyone
# (EACCES), and a path through a regular file is refused by every kernel (ENOTDIR).
SYSFS = Path("/sys")
KEY_COMMANDS = {"serve": ("serve", "--port", "0"), "seal": ("seal",), "demo": ("demo",)}


@pytest.fixture
def migrated(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "migrated.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def _needs_sysfs() -> None:
    if not (SYSFS / "kernel").is_dir():
        pytest.skip("no sysfs at /sys")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("not-a-key", "neither hex nor base64"),
        ("00" * 16, "32 bytes, got 16"),
        ("QUJD", "32 bytes, got 3"),  # base64 of b"ABC"
    ],
    ids=["garbage", "short hex", "short base64"],
)
@pytest.mark.parametrize("command", sorted(KEY_COMMANDS))
def test_a_bad_signing_key_is_one_line(
    command: str, key: str, expected: str, migrated: str, tmp_path: Path
) -> None:
    result = run_cli(
        *KEY_COMMANDS[command],
        database_url=migrated,
        key_file=tmp_path / "k",
        check=False,
        extra_env={"VOUCHERLEDGER_SIGNING_KEY": key},
    )
    assert result.returncode == 1
    _assert_one_line_failure(result.stderr, "VOUCHERLEDGER_SIGNING_KEY is not an Ed25519 key")
    assert expected in result.stderr
    assert key not in result.stderr  # a secret is never echoed
    assert "voucherledger API on" not in result.stderr  # serve printed no banner
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("command", sorted(KEY_COMMANDS))
def test_a_signing_key_file_that_holds_no_key_is_one_line(
    command: str, migrated: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "k"
    key_file.write_text("zz\n")
    result = run_cli(*KEY_COMMANDS[command], database_url=migrated, key_file=key_file, check=False)
    assert result.returncode == 1
    _assert_one_line_failure(result.stderr, f"the signing key file {key_file} does not hold")


@pytest.mark.parametrize("where", ["sysfs", "under a file", "a folder"])
@pytest.mark.parametrize("command", sorted(KEY_COMMANDS))
def test_a_signing_key_file_that_cannot_be_created_or_read_is_one_line(
    command: str, where: str, migrated: str, tmp_path: Path
) -> None:
    if where == "sysfs":
        _needs_sysfs()
        key_file, expected = SYSFS / "voucherledger-test-key", "cannot create"
    elif where == "under a file":
        (tmp_path / "file.txt").write_text("")
        key_file, expected = tmp_path / "file.txt" / "k", "cannot create"
    else:
        key_file, expected = tmp_path, "cannot read"
    result = run_cli(*KEY_COMMANDS[command], database_url=migrated, key_file=key_file, check=False)
    assert result.returncode == 1
    _assert_one_line_failure(result.stderr, f"{expected} the ")
    assert str(key_file) in result.stderr
    assert not (SYSFS / "voucherledger-test-key").exists()


def test_db_upgrade_into_a_folder_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    _needs_sysfs()
    path = SYSFS / "voucherledger-test.db"
    result = run_cli(
        "db", "upgrade", database_url=f"sqlite:///{path}", key_file=tmp_path / "k", check=False
    )
    assert result.returncode == 1
    _assert_one_line_failure(result.stderr, f"Cannot migrate the database sqlite:///{path}")
    assert not path.exists()


def test_db_upgrade_under_a_regular_file_says_it_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("")
    path = tmp_path / "file.txt" / "x.db"
    result = run_cli(
        "db", "upgrade", database_url=f"sqlite:///{path}", key_file=tmp_path / "k", check=False
    )
    assert result.returncode == 1
    _assert_one_line_failure(result.stderr, f"{tmp_path / 'file.txt'} is not a folder")


@pytest.mark.parametrize("command", [*sorted(COMMANDS), "db-upgrade"])
def test_a_database_url_that_is_no_url_is_refused(command: str, tmp_path: Path) -> None:
    args = ("db", "upgrade") if command == "db-upgrade" else COMMANDS[command]
    url = "postgres//admin:s3cret@db/x"  # a typo for postgresql://
    result = run_cli(*args, database_url=url, key_file=tmp_path / "k", check=False)
    assert result.returncode == 2
    _assert_one_line_failure(result.stderr, "Cannot use the database URL")
    assert "s3cret" not in result.stderr


def test_verify_with_a_missing_checkpoint_file_says_so(tmp_path: Path) -> None:
    export = tmp_path / "chain.jsonl"
    export.write_text("")
    result = run_cli(
        "verify",
        str(export),
        "--checkpoint",
        str(tmp_path / "nothing.json"),
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        key_file=tmp_path / "k",
        check=False,
    )
    assert result.returncode == 2
    _assert_one_line_failure(result.stderr, f"No such file: {tmp_path / 'nothing.json'}")
