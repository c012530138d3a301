"""The administrations of each pretest item, for item_service's exposure balance of pretest slots"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
# 0006 (speaking recordings) is being written on another branch; on merging, this follows it.
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pretest_exposure",
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("administrations", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("item_id"),
    )


def downgrade() -> None:
    op.drop_table("pretest_exposure")
