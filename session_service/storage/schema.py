"""Alembic, run in-process by `migrate`, `check` and `create-demo-accounts`; never imported by `serve`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from session_service.storage.engine import Database, SchemaError, schema_revision

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(db: Database, revision: str = "head") -> str:
    """alembic upgrade to `revision` (the latest by default), in this process; returns the revision reached.

    Raises SchemaError when alembic cannot: a database at a revision these migrations do not know (a newer one).
    """
    config = _alembic_config()
    try:
        with db.write_engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except CommandError as exc:
        raise SchemaError(f"the user database cannot be upgraded to {revision}: {exc}") from exc
    return schema_revision(db)


def head_revision() -> str:
    """The newest revision of the migrations (what `serve` checks against engine.SCHEMA_HEAD's value)."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""
