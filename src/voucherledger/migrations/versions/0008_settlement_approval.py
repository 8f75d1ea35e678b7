"""Two-person approval of settlements: a settlement is proposed, then settled or
rejected, and records who proposed, approved or rejected it.

Existing settlements were paid at once: they become ``settled``, proposed and
approved at their ``created_at`` by nobody known (null actor refs), and their
``redemption_ids`` are read from the claims they paid.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_settlements = sa.table(
    "settlements",
    sa.column("id", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("status", sa.String),
    sa.column("redemption_ids", sa.JSON),
    sa.column("approved_at", sa.DateTime),
)
_redemptions = sa.table(
    "redemptions", sa.column("id", sa.String), sa.column("settlement_id", sa.String)
)


def upgrade() -> None:
    with op.batch_alter_table("settlements") as batch:
        batch.add_column(sa.Column("status", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("redemption_ids", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("proposed_by", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("approved_by", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("approved_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("rejected_by", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("rejected_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("rejection_reason", sa.String(length=500), nullable=True))
    bind = op.get_bind()
    covered: dict[str, list[str]] = {}
    for redemption_id, settlement_id in bind.execute(
        sa.select(_redemptions.c.id, _redemptions.c.settlement_id)
        .where(_redemptions.c.settlement_id.is_not(None))
        .order_by(_redemptions.c.id)
    ):
        covered.setdefault(settlement_id, []).append(redemption_id)
    for settlement_id, created_at in bind.execute(
        sa.select(_settlements.c.id, _settlements.c.created_at)
    ).all():
        bind.execute(
            _settlements.update()
            .where(_settlements.c.id == settlement_id)
            .values(
                status="settled",
                redemption_ids=covered.get(settlement_id, []),
                approved_at=created_at,
            )
        )
    with op.batch_alter_table("settlements") as batch:
        batch.alter_column("status", existing_type=sa.String(length=10), nullable=False)
        batch.alter_column("redemption_ids", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("transaction_id", existing_type=sa.String(length=40), nullable=True)
        batch.create_check_constraint(
            op.f("ck_settlements_status"), "status IN ('proposed', 'settled', 'rejected')"
        )
        batch.create_check_constraint(
            op.f("ck_settlements_settled_has_transaction"),
            "(status = 'settled') = (transaction_id IS NOT NULL)",
        )


def downgrade() -> None:
    # Proposed and rejected settlements moved no money: they go, and their claims are
    # free again, as before this revision.
    bind = op.get_bind()
    bind.execute(
        _redemptions.update()
        .where(
            _redemptions.c.settlement_id.in_(
                sa.select(_settlements.c.id).where(_settlements.c.status != "settled")
            )
        )
        .values(settlement_id=None)
    )
    bind.execute(_settlements.delete().where(_settlements.c.status != "settled"))
    with op.batch_alter_table("settlements") as batch:
        batch.drop_constraint(op.f("ck_settlements_settled_has_transaction"), type_="check")
        batch.drop_constraint(op.f("ck_settlements_status"), type_="check")
        batch.alter_column("transaction_id", existing_type=sa.String(length=40), nullable=False)
        for column in (
            "rejection_reason",
            "rejected_at",
            "rejected_by",
            "approved_at",
            "approved_by",
            "proposed_by",
            "redemption_ids",
            "status",
        ):
            batch.drop_column(column)
