"""Alembic environment: always run in-process on the connection handed over by storage.schema.migrate."""

from __future__ import annotations

from alembic import context

from session_service.storage.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
