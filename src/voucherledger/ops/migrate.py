"""Running the Alembic migrations shipped inside the package (the only source of the schema).

The Alembic environment, the revisions and the per-dialect trigger SQL live in
``voucherledger/migrations/`` and are found with :mod:`importlib.resources`, so a
wheel, a container image or ``pipx install`` carries them and ``voucherledger db
upgrade`` works from any directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from voucherledger.core.db import normalise_url


def migrations_dir() -> Path:
    """The package's Alembic directory on disk (package data of a regular install)."""
    location = files("voucherledger") / "migrations"
    path = Path(str(location))
    if not (path / "env.py").is_file():
        raise FileNotFoundError(f"the migrations are missing from the package: {path}")
    return path


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", normalise_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
