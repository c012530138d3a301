"""Heartbeats of the service's processes and the outages they reveal (the time given back to open modules)"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_heartbeats",
        sa.Column("process_id", sa.String(length=40), nullable=False),
        sa.Column("alive_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("process_id"),
    )
    op.create_table(
        "service_outages",
        sa.Column("down_from_ms", sa.BigInteger(), nullable=False),
        sa.Column("up_ms", sa.BigInteger(), nullable=False),
        sa.Column("time_back_ms", sa.BigInteger(), nullable=False),
        sa.Column("modules", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("down_from_ms"),
    )


def downgrade() -> None:
    op.drop_table("service_outages")
    op.drop_table("service_heartbeats")
