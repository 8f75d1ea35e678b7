"""Who did what: the person (or account key) that made each row, and who changed it.

``created_by`` on the rows a request creates, and the ``*_by`` of the later
changes it is cheap to record. Each holds a member id (``mem_…``), an account
key id (``key_…``) or ``system``; rows from before this migration keep NULL.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, columns), in the order the columns are added.
COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("accounts", ("created_by",)),
    ("api_keys", ("created_by", "revoked_by")),
    ("programmes", ("created_by", "closed_by")),
    ("accreditations", ("created_by", "updated_by")),
    ("vouchers", ("created_by", "revoked_by")),
    ("redemptions", ("created_by", "decided_by")),
    ("feedback", ("created_by",)),
)


def upgrade() -> None:
    for table, columns in COLUMNS:
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.add_column(sa.Column(column, sa.String(length=40), nullable=True))


def downgrade() -> None:
    for table, columns in reversed(COLUMNS):
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns):
                batch.drop_column(column)
