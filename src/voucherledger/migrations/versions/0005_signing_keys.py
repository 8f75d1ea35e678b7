"""The signing key history: which public keys sign the seal chain, from which block.

Append-only (triggers in ../sql/0005_signing_keys.{dialect}.sql). An existing chain
gets its history from its blocks: one entry per run of consecutive blocks signed by
the same key, each starting at the run's first block. Keys found this way after the
first have no endorsement (nobody can sign one for them now); their entry says so.
A key that signed two separate runs is recorded at its first run only: verify then
reports the later run, truthfully, as signed by a key the history does not name.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:50:00.000000
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
BACKFILLED = "recorded by migration 0005 from the blocks it had already signed"

_blocks = sa.table(
    "ledger_seal_blocks",
    sa.column("height", sa.BigInteger()),
    sa.column("sealed_at", sa.DateTime()),
    sa.column("public_key", sa.String()),
)
_keys = sa.table(
    "ledger_signing_keys",
    sa.column("public_key", sa.String()),
    sa.column("position", sa.Integer()),
    sa.column("first_height", sa.BigInteger()),
    sa.column("recorded_at", sa.DateTime()),
    sa.column("endorsement", sa.String()),
    sa.column("unendorsed_reason", sa.Text()),
)


def upgrade() -> None:
    op.create_table(
        "ledger_signing_keys",
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("first_height", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("endorsement", sa.String(length=128), nullable=True),
        sa.Column("unendorsed_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "first_height >= 1", name=op.f("ck_ledger_signing_keys_first_height_positive")
        ),
        sa.CheckConstraint(
            "position = 1 OR endorsement IS NOT NULL OR unendorsed_reason IS NOT NULL",
            name=op.f("ck_ledger_signing_keys_endorsed_or_explained"),
        ),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_ledger_signing_keys")),
    )
    op.create_index(
        op.f("ix_ledger_signing_keys_public_key"), "ledger_signing_keys", ["public_key"]
    )
    _backfill()
    for statement in _statements("0005_signing_keys"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("ledger_signing_keys")  # its triggers go with it


def _backfill() -> None:
    bind = op.get_bind()
    rows: list[dict[str, object]] = []
    last: str | None = None
    for height, sealed_at, public_key in bind.execute(
        sa.select(_blocks.c.height, _blocks.c.sealed_at, _blocks.c.public_key).order_by(
            _blocks.c.height
        )
    ):
        # One entry per run of blocks signed by one key; a key that came back (two
        # nodes each with its own development key) gets an entry for each run, so
        # every block verifies against the history as it did against its own key.
        if public_key == last:
            continue
        last = public_key
        rows.append(
            {
                "public_key": public_key,
                "position": len(rows) + 1,
                "first_height": height,
                "recorded_at": sealed_at,
                "endorsement": None,
                "unendorsed_reason": BACKFILLED if rows else None,
            }
        )
    if rows:
        bind.execute(sa.insert(_keys), rows)


def _statements(name: str) -> list[str]:
    dialect = op.get_bind().dialect.name
    text = (SQL_DIR / f"{name}.{dialect}.sql").read_text()
    chunks = (chunk.strip() for chunk in text.split("\n---\n"))
    return [c for c in chunks if c and not all(line.startswith("--") for line in c.splitlines())]
