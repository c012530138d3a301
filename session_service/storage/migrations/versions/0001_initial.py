"""Initial schema: accounts, classes, sessions, modules, responses, events, audit"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("audit_id", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target", sa.String(length=40), nullable=False),
        sa.Column("detail_json", sa.Text(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("audit_id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_target"), ["target"], unique=False)

    owner = op.create_table(
        "database_owner",
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )
    # The owner row is the mark on PostgreSQL, where there is no PRAGMA application_id.
    op.bulk_insert(owner, [{"owner": "user_data"}])
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("create_ms", sa.BigInteger(), nullable=False),
        sa.Column("erased", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "classes",
        sa.Column("class_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("teacher_id", sa.String(length=40), nullable=False),
        sa.Column("create_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["teacher_id"],
            ["users.user_id"],
        ),
        sa.PrimaryKeyConstraint("class_id"),
    )
    with op.batch_alter_table("classes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_classes_teacher_id"), ["teacher_id"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("student_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("section", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("blueprint_version", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("current_module_id", sa.String(length=40), nullable=True),
        sa.Column("create_ms", sa.BigInteger(), nullable=False),
        sa.Column("finish_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["student_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id"),
        sa.UniqueConstraint("student_id", "request_id", name="uq_sessions_student_request"),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_create_ms"), ["create_ms"], unique=False)
        batch_op.create_index("ix_sessions_student_create", ["student_id", "create_ms"], unique=False)

    op.create_table(
        "advance_requests",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("closed_module_id", sa.String(length=40), nullable=False),
        sa.Column("applied_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.session_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "request_id"),
    )
    op.create_table(
        "enrolments",
        sa.Column("class_id", sa.String(length=40), nullable=False),
        sa.Column("student_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["class_id"], ["classes.class_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["student_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("class_id", "student_id"),
    )
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrolments_student_id"), ["student_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("client_ms", sa.BigInteger(), nullable=True),
        sa.Column("server_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.session_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_session_id"), ["session_id"], unique=False)

    op.create_table(
        "modules",
        sa.Column("module_id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("plan_key", sa.String(length=60), nullable=False),
        sa.Column("section", sa.String(length=40), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("assembly_record", sa.LargeBinary(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("deadline_ms", sa.BigInteger(), nullable=False),
        sa.Column("close_ms", sa.BigInteger(), nullable=True),
        sa.Column("theta", sa.Float(), nullable=True),
        sa.Column("theta_se", sa.Float(), nullable=True),
        sa.Column("routing_decision", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.session_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("module_id"),
        sa.UniqueConstraint("session_id", "sequence", name="uq_modules_session_sequence"),
    )
    with op.batch_alter_table("modules", schema=None) as batch_op:
        batch_op.create_index("ix_modules_status_deadline", ["status", "deadline_ms"], unique=False)

    op.create_table(
        "module_items",
        sa.Column("module_id", sa.String(length=40), nullable=False),
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("task_type", sa.String(length=60), nullable=False),
        sa.Column("full_item", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["module_id"], ["modules.module_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("module_id", "item_id"),
    )
    op.create_table(
        "module_passages",
        sa.Column("module_id", sa.String(length=40), nullable=False),
        sa.Column("passage_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("full_passage", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["module_id"], ["modules.module_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("module_id", "passage_id"),
    )
    op.create_table(
        "responses",
        sa.Column("response_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("module_id", sa.String(length=40), nullable=False),
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("answer_json", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("saved_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["module_id"], ["modules.module_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.session_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("response_id"),
        sa.UniqueConstraint("module_id", "item_id", "revision", name="uq_responses_item_revision"),
        sa.UniqueConstraint("session_id", "request_id", name="uq_responses_session_request"),
    )


def downgrade() -> None:
    op.drop_table("responses")
    op.drop_table("module_passages")
    op.drop_table("module_items")
    with op.batch_alter_table("modules", schema=None) as batch_op:
        batch_op.drop_index("ix_modules_status_deadline")

    op.drop_table("modules")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_session_id"))

    op.drop_table("events")
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolments_student_id"))

    op.drop_table("enrolments")
    op.drop_table("advance_requests")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_student_create")
        batch_op.drop_index(batch_op.f("ix_sessions_create_ms"))

    op.drop_table("sessions")
    with op.batch_alter_table("classes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_classes_teacher_id"))

    op.drop_table("classes")
    op.drop_table("users")
    op.drop_table("database_owner")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_target"))

    op.drop_table("audit_events")
