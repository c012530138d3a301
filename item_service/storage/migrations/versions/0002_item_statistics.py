"""Item statistics: the latest figures of the item-statistics job, one row per item."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "item_statistics",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=200), nullable=False),
        sa.Column("administrations", sa.Integer(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("point_biserial", sa.Float(), nullable=True),
        sa.Column("exposure_rate", sa.Float(), nullable=False),
        sa.Column("mean_response_seconds", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("compute_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["test_items.item_id"]),
        sa.PrimaryKeyConstraint("item_id"),
    )


def downgrade() -> None:
    # Never drop item-bank tables: restore a backup from the backups folder instead.
    raise NotImplementedError("downgrades are not supported; restore a backup instead")
