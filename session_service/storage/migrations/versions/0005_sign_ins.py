"""Sign-ins with their refresh tokens (hashed), and the sign-in throttle's counters and known addresses"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_ins",
        sa.Column("sign_in_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("create_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_why", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sign_in_id"),
    )
    op.create_index("ix_sign_ins_user_id", "sign_ins", ["user_id"])
    op.create_index("ix_sign_ins_expires_ms", "sign_ins", ["expires_ms"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("sign_in_id", sa.String(length=40), nullable=False),
        sa.Column("issued_ms", sa.BigInteger(), nullable=False),
        sa.Column("spent_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["sign_in_id"], ["sign_ins.sign_in_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_refresh_tokens_sign_in_id", "refresh_tokens", ["sign_in_id"])
    op.create_table(
        "sign_in_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_ms", sa.BigInteger(), nullable=False),
        sa.Column("held_until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_sign_in_failures_last_failure_ms", "sign_in_failures", ["last_failure_ms"])
    op.create_table(
        "sign_in_known_addresses",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("last_sign_in_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_sign_in_known_addresses_last_sign_in_ms", "sign_in_known_addresses", ["last_sign_in_ms"])


def downgrade() -> None:
    op.drop_table("sign_in_known_addresses")
    op.drop_table("sign_in_failures")
    op.drop_table("refresh_tokens")
    op.drop_table("sign_ins")
