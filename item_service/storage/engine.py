"""The bank's engine (SQLite set up by toefl_core.storage) and the owner-mark checks made before any use of it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from toefl_core.ownership import (
    ITEM_BANK_APPLICATION_ID,
    ITEM_BANK_FILE,
    ITEM_BANK_OWNER,
    OWNER_BY_APPLICATION_ID,
    check_owner,
    identify,
    refuse_retired_name,
)
from toefl_core.storage import create_server_engine, create_sqlite_engine, sqlite_owner, sqlite_path

BUSY_TIMEOUT_MS = 5000
# The newest migration's revision, known without Alembic: `serve` refuses a bank at any other, and never loads
# Alembic (about 12 MB resident with Mako and Pygments) to learn it. tests/item_service/test_cli.py holds it to
# the migrations' real head.
SCHEMA_HEAD = "0005"
OWNER_KEY = "owner"


class StorageError(Exception):
    """The bank cannot be used as asked; the message says what to do instead."""


def create_bank_engine(url: str, *, read_only: bool = False) -> Engine:
    path = sqlite_path(url)
    if path is None:
        return create_server_engine(url)
    if read_only:
        # Opened read-only at the SQLite level too, so not even a bug can change a baked-in bank.
        url = f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"
    # NORMAL, not FULL: the bank changes rarely, by authors who see their writes confirmed, and is backed up.
    return create_sqlite_engine(
        url, busy_timeout_ms=BUSY_TIMEOUT_MS, synchronous="NORMAL", wal_on_connect=not read_only
    )


def seal_for_shipping(path: Path) -> None:
    """Fold the WAL into the file and leave it in rollback-journal mode: one self-contained file.

    A read-only server (the baked image) opens such a file without creating -wal/-shm files beside it; a writable
    server switches it back to WAL on first use. Call it once no connection to the file is open.
    """
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = DELETE")
    finally:
        connection.close()


def read_sqlite_owner(path: Path) -> tuple[int, str | None]:
    """The application_id of a SQLite file and the owner it names, read without changing the file."""
    connection = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    try:
        (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    finally:
        connection.close()
    return int(application_id), OWNER_BY_APPLICATION_ID.get(int(application_id))


def read_owner(engine: Engine) -> str | None:
    """The owner named by the live database: SQLite's file header, or the owner row elsewhere."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            return sqlite_owner(connection)
        # Another service's database has no bank_meta table at all: no mark of ours, refused by check_owner.
        if not inspect(connection).has_table("bank_meta"):
            return None
        value = connection.execute(text("SELECT value FROM bank_meta WHERE key = :k"), {"k": OWNER_KEY}).scalar()
    return None if value is None else str(value)


def missing_bank_message(path: Path) -> str:
    return (
        f"no item bank at {path}; build one with `make item-bank` "
        "(or create an empty one with `python -m item_service migrate --create`)"
    )


def check_bank(url: str) -> None:
    """Refuse a retired file name, a missing file, or a database whose owner mark is not the item bank's."""
    refuse_retired_name(url, use_instead=ITEM_BANK_FILE)
    path = sqlite_path(url)
    name = identify(url).database_name
    if path is None:
        engine = create_bank_engine(url)
        try:
            check_owner(read_owner(engine), expected=ITEM_BANK_OWNER, what=f"database {name!r}")
        finally:
            engine.dispose()
        return
    if not path.exists():
        raise StorageError(missing_bank_message(path))
    application_id, owner = read_sqlite_owner(path)
    if owner is None and application_id:
        raise StorageError(
            f"database {name!r} carries the unknown application_id {application_id:#x}, "
            f"not the item bank's {ITEM_BANK_APPLICATION_ID:#x}; refusing to open it"
        )
    check_owner(owner, expected=ITEM_BANK_OWNER, what=f"database {name!r}")
