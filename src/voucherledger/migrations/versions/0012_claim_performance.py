"""What PostgreSQL spends on a claim (issue 14): the balance trigger's reads, the
statistics they are planned from, and room for HOT updates of balance rows.

No table or column changes; PostgreSQL only (SQLite has no deferred trigger, and its
planner has no generic plans). The statements, and what each is for, are in
../sql/0012_claim_performance.postgresql.sql; the downgrade restores migration 0001's
trigger function from ../sql/0012_claim_performance.postgresql.down.sql.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 02:00:00.000000
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def upgrade() -> None:
    _run("0012_claim_performance.postgresql.sql")


def downgrade() -> None:
    _run("0012_claim_performance.postgresql.down.sql")


def _run(name: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    text = (SQL_DIR / name).read_text()
    chunks = (chunk.strip() for chunk in text.split("\n---\n"))
    for chunk in chunks:
        if chunk and not all(line.startswith("--") for line in chunk.splitlines()):
            op.execute(chunk)
