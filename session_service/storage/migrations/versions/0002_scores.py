"""Scores (versions and section rows), rating tasks, ratings, and applied rescore requests"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rescore_requests",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=False),
        sa.Column("applied_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.session_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "request_id"),
    )
    op.create_table(
        "score_versions",
        sa.Column("score_id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("blueprint_version", sa.String(length=40), nullable=False),
        sa.Column("cut_table_version", sa.String(length=40), nullable=False),
        sa.Column("total_band", sa.String(length=8), nullable=True),
        sa.Column("total_cefr", sa.String(length=4), nullable=True),
        sa.Column("comparable_low", sa.Integer(), nullable=True),
        sa.Column("comparable_high", sa.Integer(), nullable=True),
        sa.Column("comparable_midpoint", sa.Integer(), nullable=True),
        sa.Column("create_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.session_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("score_id"),
        sa.UniqueConstraint("session_id", "version", name="uq_score_versions_session_version"),
    )
    op.create_table(
        "section_scores",
        sa.Column("score_id", sa.String(length=40), nullable=False),
        sa.Column("section", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("theta", sa.Float(), nullable=False),
        sa.Column("standard_error", sa.Float(), nullable=False),
        sa.Column("band", sa.String(length=8), nullable=False),
        sa.Column("cefr", sa.String(length=4), nullable=False),
        sa.Column("band_low", sa.String(length=8), nullable=False),
        sa.Column("band_high", sa.String(length=8), nullable=False),
        sa.Column("items_used", sa.Integer(), nullable=False),
        sa.Column("items_awaiting_rating", sa.Integer(), nullable=False),
        sa.Column("task_types_json", sa.Text(), nullable=False),
        sa.Column("parameters_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["score_id"], ["score_versions.score_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("score_id", "section"),
    )
    op.create_table(
        "rating_tasks",
        sa.Column("response_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("section", sa.String(length=40), nullable=False),
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("task_type", sa.String(length=60), nullable=False),
        sa.Column("double_rated", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("final_score", sa.Integer(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("submit_ms", sa.BigInteger(), nullable=False),
        sa.Column("create_ms", sa.BigInteger(), nullable=False),
        sa.Column("final_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["response_id"], ["responses.response_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.session_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("response_id"),
    )
    with op.batch_alter_table("rating_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rating_tasks_session_id"), ["session_id"], unique=False)
        batch_op.create_index(
            "ix_rating_tasks_state_type_submit", ["state", "task_type", "submit_ms"], unique=False
        )

    op.create_table(
        "ratings",
        sa.Column("rating_id", sa.String(length=40), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("dimension_scores_json", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("adjudication", sa.Boolean(), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=True),
        sa.Column("create_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["response_id"], ["rating_tasks.response_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rating_id"),
        sa.UniqueConstraint("rater_id", "request_id", name="uq_ratings_rater_request"),
        sa.UniqueConstraint("response_id", "rater_id", name="uq_ratings_response_rater"),
    )
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ratings_rater_id"), ["rater_id"], unique=False)

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_finish", ["finish_ms", "session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_finish")

    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ratings_rater_id"))

    op.drop_table("ratings")
    with op.batch_alter_table("rating_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_rating_tasks_state_type_submit")
        batch_op.drop_index(batch_op.f("ix_rating_tasks_session_id"))

    op.drop_table("rating_tasks")
    op.drop_table("section_scores")
    op.drop_table("score_versions")
    op.drop_table("rescore_requests")
