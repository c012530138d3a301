"""Alembic environment: run on the connection handed over by item_service.storage.schema (no alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from item_service.storage.models import Base

connection: Connection = context.config.attributes["connection"]
# render_as_batch: SQLite can only alter tables by copying them, which Alembic's batch mode does.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
