"""The request ids of the event batches stored, so that a retried LogEvents stores its batch once"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_batches",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("applied_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.session_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "request_id"),
    )


def downgrade() -> None:
    op.drop_table("event_batches")
