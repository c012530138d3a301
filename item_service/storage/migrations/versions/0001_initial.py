"""Initial item bank schema, with the item bank's owner mark."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from toefl_core.ownership import ITEM_BANK_APPLICATION_ID, ITEM_BANK_OWNER

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bank_meta = op.create_table(
        "bank_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "import_batches",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("passages_created", sa.Integer(), nullable=False),
        sa.Column("passages_updated", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_table(
        "passages",
        sa.Column("passage_id", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("section", sa.String(length=40), nullable=False),
        sa.Column("task_type", sa.String(length=60), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("audio_url", sa.Text(), nullable=False),
        sa.Column("transcript", sa.Text(), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("passage_id"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("passages") as batch:
        batch.create_index("ix_passages_section", ["section"])
        batch.create_index("ix_passages_task_type", ["task_type"])
    op.create_table(
        "test_items",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("section", sa.String(length=40), nullable=False),
        sa.Column("task_type", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("passage_id", sa.String(length=32), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("difficulty", sa.Float(), nullable=True),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=True),
        sa.Column("answer_key", sa.JSON(), nullable=True),
        sa.Column("irt", sa.JSON(), nullable=True),
        sa.Column("rubric", sa.JSON(), nullable=True),
        sa.Column("provenance", sa.JSON(), nullable=True),
        sa.Column("create_request_id", sa.String(length=200), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["passage_id"], ["passages.passage_id"]),
        sa.PrimaryKeyConstraint("item_id"),
        sa.UniqueConstraint("create_request_id"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("test_items") as batch:
        batch.create_index("ix_test_items_difficulty", ["difficulty"])
        batch.create_index("ix_test_items_passage_id", ["passage_id"])
        batch.create_index("ix_test_items_section", ["section"])
        batch.create_index("ix_test_items_status", ["status"])
        batch.create_index("ix_test_items_task_type", ["task_type"])
    op.create_table(
        "item_revisions",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("change_time", sa.DateTime(), nullable=False),
        sa.Column("changed_fields", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["test_items.item_id"]),
        sa.PrimaryKeyConstraint("item_id", "revision"),
    )
    op.create_table(
        "reviews",
        sa.Column("review_id", sa.String(length=32), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("verdict", sa.String(length=40), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["test_items.item_id"]),
        sa.PrimaryKeyConstraint("review_id"),
    )
    with op.batch_alter_table("reviews") as batch:
        batch.create_index("ix_reviews_item_id", ["item_id"])
    op.bulk_insert(bank_meta, [{"key": "generation", "value": "0"}, {"key": "owner", "value": ITEM_BANK_OWNER}])
    if op.get_bind().dialect.name == "sqlite":
        # The owner mark in the file header: the service refuses any file without it.
        op.execute(f"PRAGMA application_id = {ITEM_BANK_APPLICATION_ID}")


def downgrade() -> None:
    # Never drop item-bank tables: restore a backup from the backups folder instead.
    raise NotImplementedError("downgrades are not supported; restore a backup instead")
