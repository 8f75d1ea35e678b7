"""Leases for background work, the shared failed-code count, and an index for the
idempotency purge.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "code_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("supplier_id", sa.String(length=40), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_failures")),
    )
    op.create_index(
        "ix_code_failures_supplier_id_failed_at", "code_failures", ["supplier_id", "failed_at"]
    )
    op.create_index("ix_code_failures_failed_at", "code_failures", ["failed_at"])
    op.create_index("ix_idempotency_records_created_at", "idempotency_records", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_records_created_at", table_name="idempotency_records")
    op.drop_index("ix_code_failures_failed_at", table_name="code_failures")
    op.drop_index("ix_code_failures_supplier_id_failed_at", table_name="code_failures")
    op.drop_table("code_failures")
    op.drop_table("leases")
