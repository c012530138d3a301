"""Pinned items and passages stored once per distinct content (pinned_content, keyed by SHA-256)"""

from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)
# Rows read, hashed and rewritten per round: bounded memory on a database of any size.
CHUNK = 2000
# (table, its second key column, the old bytes column)
PINNED = (("module_items", "item_id", "full_item"), ("module_passages", "passage_id", "full_passage"))


def _move_to_pinned_content(table: str, key: str, column: str) -> None:
    """Copy each row's bytes into pinned_content (once per distinct body) and point the row at it."""
    conn = op.get_bind()
    total = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0
    moved, after = 0, ("", "")
    while True:
        rows = conn.execute(
            sa.text(
                f"SELECT module_id, {key}, {column} FROM {table} WHERE (module_id, {key}) > (:m, :k) "
                f"ORDER BY module_id, {key} LIMIT {CHUNK}"
            ),
            {"m": after[0], "k": after[1]},
        ).all()
        if not rows:
            break
        pointers = [{"m": m, "k": k, "d": hashlib.sha256(body).hexdigest()} for m, k, body in rows]
        bodies = {p["d"]: bytes(row[2]) for p, row in zip(pointers, rows, strict=True)}
        conn.execute(
            sa.text("INSERT INTO pinned_content (digest, body) VALUES (:d, :b) ON CONFLICT (digest) DO NOTHING"),
            [{"d": d, "b": b} for d, b in bodies.items()],
        )
        conn.execute(
            sa.text(f"UPDATE {table} SET content_digest = :d WHERE module_id = :m AND {key} = :k"), pointers
        )
        moved += len(rows)
        after = (rows[-1][0], rows[-1][1])
        log.info("0003: %s: %d of %d rows point at pinned_content", table, moved, total)


def upgrade() -> None:
    op.create_table(
        "pinned_content",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    for table, key, column in PINNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("content_digest", sa.String(length=64), nullable=True))
        _move_to_pinned_content(table, key, column)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("content_digest", existing_type=sa.String(length=64), nullable=False)
            batch_op.create_foreign_key(
                f"fk_{table}_content_digest", "pinned_content", ["content_digest"], ["digest"]
            )
            batch_op.drop_column(column)


def downgrade() -> None:
    conn = op.get_bind()
    for table, _key, column in PINNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.LargeBinary(), nullable=True))
        conn.execute(
            sa.text(
                f"UPDATE {table} SET {column} = "
                f"(SELECT body FROM pinned_content WHERE pinned_content.digest = {table}.content_digest)"
            )
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.LargeBinary(), nullable=False)
            batch_op.drop_constraint(f"fk_{table}_content_digest", type_="foreignkey")
            batch_op.drop_column("content_digest")
    op.drop_table("pinned_content")
