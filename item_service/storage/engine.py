"""Engine creation (WAL, foreign keys, busy timeout) and the owner-mark checks made before any use of the bank."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from toefl_core.ownership import (
    ITEM_BANK_APPLICATION_ID,
    ITEM_BANK_FILE,
    ITEM_BANK_OWNER,
    OWNER_BY_APPLICATION_ID,
    check_owner,
    identify,
    refuse_retired_name,
)

BUSY_TIMEOUT_MS = 5000
OWNER_KEY = "owner"


class StorageError(Exception):
    """The bank cannot be used as asked; the message says what to do instead."""


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


IMMEDIATE = "sqlite_begin_immediate"


def _on_connect(read_only: bool) -> Any:
    def configure(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # The driver's own transaction handling would leave SELECTs outside any transaction; we issue BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not read_only:
            # WAL lets readers run while a writer commits; the mode is stored in the file itself.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    return configure


def create_bank_engine(url: str, *, read_only: bool = False) -> Engine:
    path = sqlite_path(url)
    if path is None:
        return create_engine(url, pool_pre_ping=True)
    if read_only:
        # Opened read-only at the SQLite level too, so not even a bug can change a baked-in bank.
        engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    else:
        engine = create_engine(url)
    event.listen(engine, "connect", _on_connect(read_only))
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_begin(connection: Connection) -> None:
    # A writer takes the write lock up front: upgrading a read transaction later could fail with SQLITE_BUSY.
    immediate = connection.get_execution_options().get(IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


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
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            application_id = connection.execute(text("PRAGMA application_id")).scalar_one()
        return OWNER_BY_APPLICATION_ID.get(int(application_id))
    with engine.connect() as connection:
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
