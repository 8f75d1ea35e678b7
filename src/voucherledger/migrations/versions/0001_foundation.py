"""The foundation: accounts, API keys, idempotency records and the ledger.

Triggers and functions are per dialect in ../sql/0001_foundation.{dialect}.sql.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 05:04:55.657902
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("group_type", sa.String(length=40), nullable=True),
        sa.Column("origin_country", sa.String(length=2), nullable=True),
        sa.Column("residence_country", sa.String(length=2), nullable=True),
        sa.Column("women_led", sa.Boolean(), nullable=True),
        sa.Column("service_categories", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'group') = (group_type IS NOT NULL AND origin_country IS NOT NULL "
            "AND residence_country IS NOT NULL AND women_led IS NOT NULL)",
            name=op.f("ck_accounts_group_profile"),
        ),
        sa.CheckConstraint(
            "(kind = 'supplier') = (service_categories IS NOT NULL)",
            name=op.f("ck_accounts_supplier_profile"),
        ),
        sa.CheckConstraint(
            "kind IN ('admin', 'funder', 'manager', 'group', 'supplier', 'auditor')",
            name=op.f("ck_accounts_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_index("ix_accounts_kind_id", "accounts", ["kind", "id"])

    op.create_table(
        "idempotency_records",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("media_type", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "key", name=op.f("pk_idempotency_records")),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("may_go_negative", sa.Boolean(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_ledger_accounts_currency_code")),
        sa.CheckConstraint(
            "may_go_negative OR balance >= 0", name=op.f("ck_ledger_accounts_no_overdraft")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_ledger_accounts")),
    )
    op.create_table(
        "ledger_seal_blocks",
        sa.Column("height", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first_sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("height", name=op.f("pk_ledger_seal_blocks")),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("programme_id", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("idempotency_key", sa.String(length=600), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('deposit', 'issue', 'hold', 'capture', 'void', 'refund', 'revoke', "
            "'expire', 'settle', 'close', 'transfer')",
            name=op.f("ck_ledger_transactions_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
    )
    op.create_index("ix_ledger_transactions_created_at", "ledger_transactions", ["created_at"])
    op.create_index(
        "ix_ledger_transactions_programme_created",
        "ledger_transactions",
        ["programme_id", "created_at"],
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_api_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_account_id"), "api_keys", ["account_id"])

    op.create_table(
        "ledger_postings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.Column("account_code", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_postings_nonzero")),
        sa.ForeignKeyConstraint(
            ["account_code"],
            ["ledger_accounts.code"],
            name=op.f("fk_ledger_postings_account_code_ledger_accounts"),
            deferrable=True,
            initially="DEFERRED",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_postings_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
    )
    op.create_index(
        "ix_ledger_postings_account_created", "ledger_postings", ["account_code", "created_at"]
    )
    op.create_index(
        "ix_ledger_postings_transaction_id_id", "ledger_postings", ["transaction_id", "id"]
    )

    op.create_table(
        "ledger_seal_queue",
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_seal_queue_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_ledger_seal_queue")),
    )
    op.create_table(
        "ledger_seals",
        sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("block_height", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_seals_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_ledger_seals")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_ledger_seals_transaction_id")),
    )
    op.create_index(op.f("ix_ledger_seals_block_height"), "ledger_seals", ["block_height"])

    _run_sql("0001_foundation")


def downgrade() -> None:
    _drop_triggers()
    op.drop_index(op.f("ix_ledger_seals_block_height"), table_name="ledger_seals")

    op.drop_table("ledger_seals")
    op.drop_table("ledger_seal_queue")
    op.drop_index("ix_ledger_postings_transaction_id_id", table_name="ledger_postings")
    op.drop_index("ix_ledger_postings_account_created", table_name="ledger_postings")

    op.drop_table("ledger_postings")
    op.drop_index(op.f("ix_api_keys_account_id"), table_name="api_keys")

    op.drop_table("api_keys")
    op.drop_index("ix_ledger_transactions_programme_created", table_name="ledger_transactions")
    op.drop_index("ix_ledger_transactions_created_at", table_name="ledger_transactions")

    op.drop_table("ledger_transactions")
    op.drop_table("ledger_seal_blocks")
    op.drop_table("ledger_accounts")
    op.drop_table("idempotency_records")
    op.drop_index("ix_accounts_kind_id", table_name="accounts")

    op.drop_table("accounts")


def _statements(name: str) -> list[str]:
    dialect = op.get_bind().dialect.name
    text = (SQL_DIR / f"{name}.{dialect}.sql").read_text()
    chunks = (chunk.strip() for chunk in text.split("\n---\n"))
    return [c for c in chunks if c and not all(line.startswith("--") for line in c.splitlines())]


def _run_sql(name: str) -> None:
    for statement in _statements(name):
        op.execute(statement)


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION vl_refuse_change() CASCADE")
        op.execute("DROP FUNCTION vl_check_balanced() CASCADE")
