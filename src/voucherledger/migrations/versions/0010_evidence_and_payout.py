"""Evidence files behind claims, and the supplier's contact and payout details.

``evidence_blobs`` holds each distinct content once, keyed by its SHA-256 (the
database store of ``evidence.storage``); ``evidence_files`` is one upload by a
supplier, pointing at its blob, and at the claim it backs once a claim uses it
(at most one). Accounts gain the supplier's contact and payout columns, and
settlements the IBAN the payout went to, copied when it was proposed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEDIA_TYPES = "media_type IN ('application/pdf', 'image/jpeg', 'image/png')"

# (column, type), in the order they are added to accounts.
ACCOUNT_COLUMNS: tuple[tuple[str, sa.String | sa.DateTime], ...] = (
    ("contact_email", sa.String(length=254)),
    ("contact_phone", sa.String(length=40)),
    ("payout_iban", sa.String(length=34)),
    ("payout_bic", sa.String(length=11)),
    ("payout_account_holder", sa.String(length=200)),
    ("payout_updated_at", sa.DateTime()),
    ("payout_updated_by", sa.String(length=40)),
)


def upgrade() -> None:
    op.create_table(
        "evidence_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("size > 0", name=op.f("ck_evidence_blobs_size_positive")),
        sa.CheckConstraint(MEDIA_TYPES, name=op.f("ck_evidence_blobs_media_type")),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_evidence_blobs")),
    )
    op.create_table(
        "evidence_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("redemption_id", sa.String(length=40), nullable=True),
        sa.CheckConstraint("size > 0", name=op.f("ck_evidence_files_size_positive")),
        sa.CheckConstraint(MEDIA_TYPES, name=op.f("ck_evidence_files_media_type")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_evidence_files_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["evidence_blobs.sha256"],
            name=op.f("fk_evidence_files_sha256_evidence_blobs"),
        ),
        sa.ForeignKeyConstraint(
            ["redemption_id"],
            ["redemptions.id"],
            name=op.f("fk_evidence_files_redemption_id_redemptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_files")),
    )
    op.create_index("ix_evidence_files_account_id_id", "evidence_files", ["account_id", "id"])
    op.create_index("ix_evidence_files_redemption_id", "evidence_files", ["redemption_id"])
    with op.batch_alter_table("accounts") as batch:
        for name, type_ in ACCOUNT_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("settlements") as batch:
        batch.add_column(sa.Column("payout_iban", sa.String(length=34), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("settlements") as batch:
        batch.drop_column("payout_iban")
    with op.batch_alter_table("accounts") as batch:
        for name, _type in reversed(ACCOUNT_COLUMNS):
            batch.drop_column(name)
    op.drop_index("ix_evidence_files_redemption_id", table_name="evidence_files")
    op.drop_index("ix_evidence_files_account_id_id", table_name="evidence_files")
    op.drop_table("evidence_files")
    op.drop_table("evidence_blobs")
