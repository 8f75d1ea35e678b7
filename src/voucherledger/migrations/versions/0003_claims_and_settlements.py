"""Claims (redemptions), their feedback, and settlements.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 05:47:41.879331
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settlements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("supplier_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payout_reference", sa.String(length=200), nullable=False),
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_settlements_amount_positive")),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_settlements_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"], ["accounts.id"], name=op.f("fk_settlements_supplier_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlements")),
    )
    op.create_index("ix_settlements_programme_id_id", "settlements", ["programme_id", "id"])
    op.create_index("ix_settlements_supplier_id_id", "settlements", ["supplier_id", "id"])

    op.create_table(
        "redemptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("voucher_id", sa.String(length=40), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=False),
        sa.Column("supplier_id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("service_category", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("delivered_on", sa.Date(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("hold_expires_at", sa.DateTime(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.Column("settlement_id", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'captured', 'voided')", name=op.f("ck_redemptions_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_redemptions_amount_positive")),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= amount",
            name=op.f("ck_redemptions_refunded"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["accounts.id"], name=op.f("fk_redemptions_group_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programmes.id"], name=op.f("fk_redemptions_programme_id_programmes")
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name=op.f("fk_redemptions_settlement_id_settlements"),
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"], ["accounts.id"], name=op.f("fk_redemptions_supplier_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"], ["vouchers.id"], name=op.f("fk_redemptions_voucher_id_vouchers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
    )
    op.create_index("ix_redemptions_programme_id_id", "redemptions", ["programme_id", "id"])
    op.create_index(op.f("ix_redemptions_settlement_id"), "redemptions", ["settlement_id"])
    op.create_index(
        "ix_redemptions_status_hold_expires_at", "redemptions", ["status", "hold_expires_at"]
    )
    op.create_index(
        "ix_redemptions_supplier_settle", "redemptions", ["supplier_id", "programme_id", "status"]
    )
    op.create_index("ix_redemptions_voucher_id", "redemptions", ["voucher_id"])

    op.create_table(
        "feedback",
        sa.Column("redemption_id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("outcome_kind", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "outcome_kind IN ('product', 'process')", name=op.f("ck_feedback_outcome_kind")
        ),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_feedback_rating")),
        sa.ForeignKeyConstraint(
            ["group_id"], ["accounts.id"], name=op.f("fk_feedback_group_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["redemption_id"],
            ["redemptions.id"],
            name=op.f("fk_feedback_redemption_id_redemptions"),
        ),
        sa.PrimaryKeyConstraint("redemption_id", name=op.f("pk_feedback")),
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_index("ix_redemptions_voucher_id", table_name="redemptions")
    op.drop_index("ix_redemptions_supplier_settle", table_name="redemptions")
    op.drop_index("ix_redemptions_status_hold_expires_at", table_name="redemptions")
    op.drop_index(op.f("ix_redemptions_settlement_id"), table_name="redemptions")
    op.drop_index("ix_redemptions_programme_id_id", table_name="redemptions")

    op.drop_table("redemptions")
    op.drop_index("ix_settlements_supplier_id_id", table_name="settlements")
    op.drop_index("ix_settlements_programme_id_id", table_name="settlements")

    op.drop_table("settlements")
