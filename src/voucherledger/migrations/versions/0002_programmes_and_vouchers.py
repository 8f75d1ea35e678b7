"""Programmes, their parties and accreditations, and vouchers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:39:53.324703
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "programmes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("funder_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("service_categories", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_programmes_status")),
        sa.ForeignKeyConstraint(
            ["funder_id"], ["accounts.id"], name=op.f("fk_programmes_funder_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programmes")),
    )
    op.create_index("ix_programmes_funder_id_id", "programmes", ["funder_id", "id"])

    op.create_table(
        "accreditations",
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("supplier_id", sa.String(length=40), nullable=False),
        sa.Column("service_categories", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'suspended')", name=op.f("ck_accreditations_status")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_accreditations_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"], ["accounts.id"], name=op.f("fk_accreditations_supplier_id_accounts")
        ),
        sa.PrimaryKeyConstraint("programme_id", "supplier_id", name=op.f("pk_accreditations")),
    )
    op.create_table(
        "programme_parties",
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.CheckConstraint(
            "role IN ('manager', 'auditor')", name=op.f("ck_programme_parties_role")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_programme_parties_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_programme_parties_programme_id_programmes"),
        ),
        sa.PrimaryKeyConstraint("programme_id", "account_id", name=op.f("pk_programme_parties")),
    )
    op.create_index(
        "ix_programme_parties_account_id", "programme_parties", ["account_id", "programme_id"]
    )

    op.create_table(
        "vouchers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reserve_amount", sa.BigInteger(), nullable=False),
        sa.Column("reserve_returned", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("service_categories", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("issue_transaction_id", sa.String(length=40), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("ended_transaction_id", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'exhausted', 'expired', 'revoked')",
            name=op.f("ck_vouchers_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_vouchers_amount_positive")),
        sa.CheckConstraint(
            "reserve_amount >= 0 AND reserve_amount <= amount", name=op.f("ck_vouchers_reserve")
        ),
        sa.CheckConstraint(
            "reserve_returned >= 0 AND reserve_returned <= reserve_amount",
            name=op.f("ck_vouchers_reserve_returned"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["accounts.id"], name=op.f("fk_vouchers_group_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_vouchers_programme_id_programmes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouchers")),
        sa.UniqueConstraint("code", name=op.f("uq_vouchers_code")),
    )
    op.create_index("ix_vouchers_group_id_programme_id", "vouchers", ["group_id", "programme_id"])
    op.create_index("ix_vouchers_programme_id_id", "vouchers", ["programme_id", "id"])
    op.create_index("ix_vouchers_status_expires_at", "vouchers", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_vouchers_status_expires_at", table_name="vouchers")
    op.drop_index("ix_vouchers_programme_id_id", table_name="vouchers")
    op.drop_index("ix_vouchers_group_id_programme_id", table_name="vouchers")

    op.drop_table("vouchers")
    op.drop_index("ix_programme_parties_account_id", table_name="programme_parties")

    op.drop_table("programme_parties")
    op.drop_table("accreditations")
    op.drop_index("ix_programmes_funder_id_id", table_name="programmes")

    op.drop_table("programmes")
