"""Sittings, accommodations, proctoring (pause, void) and the audit log of every staff action"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sittings",
        sa.Column("sitting_id", sa.String(length=40), nullable=False),
        sa.Column("class_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("blueprint_version", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("section", sa.String(length=40), nullable=False),
        sa.Column("opens_ms", sa.BigInteger(), nullable=False),
        sa.Column("closes_ms", sa.BigInteger(), nullable=False),
        sa.Column("access_code", sa.String(length=40), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("create_ms", sa.BigInteger(), nullable=False),
        sa.Column("update_ms", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["class_id"], ["classes.class_id"]),
        sa.PrimaryKeyConstraint("sitting_id"),
    )
    op.create_index("ix_sittings_class_id", "sittings", ["class_id"])
    op.create_table(
        "accommodations",
        sa.Column("student_id", sa.String(length=40), nullable=False),
        sa.Column("time_multiplier", sa.Float(), nullable=False),
        sa.Column("break_seconds", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(length=40), nullable=False),
        sa.Column("update_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["student_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("student_id"),
    )
    # Plain ADD COLUMNs (no table rebuild on SQLite): sessions and audit_events may be large.
    op.add_column("sessions", sa.Column("sitting_id", sa.String(length=40), nullable=True))
    op.add_column(
        "sessions", sa.Column("time_multiplier", sa.Float(), server_default=sa.text("1.0"), nullable=False)
    )
    op.add_column(
        "sessions", sa.Column("break_seconds", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column("sessions", sa.Column("paused_ms", sa.BigInteger(), nullable=True))
    op.add_column("sessions", sa.Column("voided_ms", sa.BigInteger(), nullable=True))
    op.add_column("sessions", sa.Column("void_reason", sa.Text(), nullable=True))
    op.create_index("ix_sessions_sitting_id", "sessions", ["sitting_id"])
    op.add_column("audit_events", sa.Column("actor_role", sa.String(length=20), server_default="", nullable=False))
    op.add_column(
        "audit_events", sa.Column("target_type", sa.String(length=20), server_default="", nullable=False)
    )
    op.add_column("audit_events", sa.Column("student_id", sa.String(length=40), nullable=True))
    op.add_column("audit_events", sa.Column("reason", sa.Text(), server_default="", nullable=False))
    op.add_column("audit_events", sa.Column("request_id", sa.String(length=100), nullable=True))
    # The erasures recorded before 0008 are about the student they name.
    op.execute(
        "UPDATE audit_events SET student_id = target, target_type = 'student' WHERE action = 'erase_student_data'"
    )
    op.create_index("ix_audit_events_student_id", "audit_events", ["student_id"])
    op.create_index("ix_audit_events_time", "audit_events", ["time_ms", "audit_id"])
    op.create_index("uq_audit_events_target_request", "audit_events", ["target", "request_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_audit_events_target_request", table_name="audit_events")
    op.drop_index("ix_audit_events_time", table_name="audit_events")
    op.drop_index("ix_audit_events_student_id", table_name="audit_events")
    for column in ("request_id", "reason", "student_id", "target_type", "actor_role"):
        op.drop_column("audit_events", column)
    op.drop_index("ix_sessions_sitting_id", table_name="sessions")
    for column in ("void_reason", "voided_ms", "paused_ms", "break_seconds", "time_multiplier", "sitting_id"):
        op.drop_column("sessions", column)
    op.drop_table("accommodations")
    op.drop_table("sittings")
