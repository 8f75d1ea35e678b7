"""Members: the people of an account, and personal API keys.

A member is a person in one account with a role inside it (viewer, operator,
approver, owner). An API key may now belong to a member, and then acts as that
person; existing keys stay the account's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("invite_token_hash", sa.String(length=64), nullable=True),
        sa.Column("invite_expires_at", sa.DateTime(), nullable=True),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "role IN ('viewer', 'operator', 'approver', 'owner')", name=op.f("ck_members_role")
        ),
        sa.CheckConstraint(
            "status IN ('invited', 'active', 'disabled')", name=op.f("ck_members_status")
        ),
        sa.CheckConstraint(
            "status = 'invited' OR password_hash IS NOT NULL",
            name=op.f("ck_members_password_set"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_members_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint(
            "account_id", "email_key", name=op.f("uq_members_account_id_email_key")
        ),
        sa.UniqueConstraint("invite_token_hash", name=op.f("uq_members_invite_token_hash")),
    )
    op.create_index(op.f("ix_members_account_id_id"), "members", ["account_id", "id"])
    op.create_index(op.f("ix_members_email_key"), "members", ["email_key"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("member_id", sa.String(length=40), nullable=True))
        batch.create_foreign_key(
            op.f("fk_api_keys_member_id_members"), "members", ["member_id"], ["id"]
        )
        batch.create_index(op.f("ix_api_keys_member_id"), ["member_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index(op.f("ix_api_keys_member_id"))
        batch.drop_constraint(op.f("fk_api_keys_member_id_members"), type_="foreignkey")
        batch.drop_column("member_id")
    op.drop_table("members")
