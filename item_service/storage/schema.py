"""Alembic, run programmatically: upgrade to head, the live revision, and drift between models and database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from item_service.storage.models import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def upgrade_to_head(engine: Engine) -> None:
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def integrity_problems(engine: Engine) -> list[str]:
    """What SQLite's integrity check finds wrong with the file (empty: sound); other backends check themselves."""
    if engine.dialect.name != "sqlite":
        return []
    try:
        with engine.connect() as connection:
            rows = [str(row[0]) for row in connection.execute(text("PRAGMA integrity_check"))]
    except DBAPIError as exc:
        # A badly damaged file fails the check itself ("database disk image is malformed").
        return [str(exc.orig)]
    return [] if rows == ["ok"] else rows


def schema_drift(engine: Engine) -> list[str]:
    """What differs between the models and the live schema, one line per difference (empty: none)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        revision = context.get_current_revision()
        diffs: list[Any] = compare_metadata(context, Base.metadata)
    problems = [_describe(diff) for diff in diffs]
    head = head_revision()
    if revision != head:
        problems.insert(0, f"database is at revision {revision or 'none'}, the code at {head}")
    return problems


def _describe(diff: Any) -> str:
    # compare_metadata yields tuples, or lists of tuples for column modifications.
    if isinstance(diff, list):
        return "; ".join(_describe(part) for part in diff)
    kind, *rest = diff
    return f"{kind}: " + ", ".join(str(getattr(part, "name", part)) for part in rest)
