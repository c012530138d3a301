"""Item fit in the item statistics: infit and outfit mean squares and the misfit flag."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("item_statistics") as table:
        table.add_column(sa.Column("infit", sa.Float(), nullable=True))
        table.add_column(sa.Column("outfit", sa.Float(), nullable=True))
        table.add_column(sa.Column("misfit", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("item_statistics") as table:
        table.drop_column("misfit")
        table.drop_column("outfit")
        table.drop_column("infit")
