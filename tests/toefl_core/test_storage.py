"""The SQLite plumbing both services' storage packages share: connection settings, owner marks, revisions."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from toefl_core.ownership import ITEM_BANK_APPLICATION_ID, ITEM_BANK_OWNER
from toefl_core.storage import (
    IMMEDIATE,
    application_id,
    create_sqlite_engine,
    enable_wal,
    is_sqlite,
    mark_sqlite_owner,
    schema_revision,
    sqlite_owner,
    sqlite_path,
)


def test_urls() -> None:
    assert sqlite_path("sqlite:///data/user_data.db") == Path("data/user_data.db")
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql+psycopg://u:p@h/db") is None
    assert is_sqlite("sqlite:///x.db") and not is_sqlite("postgresql+psycopg://u:p@h/db")


def test_connections_are_configured_and_wal_is_set_when_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = create_sqlite_engine(url, busy_timeout_ms=1234, synchronous="FULL")
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("busy_timeout", "foreign_keys", "synchronous", "journal_mode", "temp_store")
            }
        # synchronous FULL is 2, temp_store MEMORY 2; the journal stays as the file had it until enable_wal.
        assert pragma == {
            "busy_timeout": 1234,
            "foreign_keys": 1,
            "synchronous": 2,
            "journal_mode": "delete",
            "temp_store": 2,
        }
        enable_wal(engine)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
    other = create_sqlite_engine(
        f"sqlite:///{tmp_path / 'b.db'}", busy_timeout_ms=5, synchronous="NORMAL", wal_on_connect=True
    )
    try:
        with other.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    finally:
        other.dispose()


def test_begin_immediate_by_engine_or_by_connection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    writer = create_sqlite_engine(
        url, busy_timeout_ms=0, synchronous="NORMAL", immediate=True, wal_on_connect=True
    )
    reader = create_sqlite_engine(url, busy_timeout_ms=0, synchronous="NORMAL")
    try:
        with writer.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
        # The writer engine's BEGIN takes the write lock at once: a deferred read still runs beside it, and a
        # connection asking for IMMEDIATE fails at BEGIN (no busy timeout here), before doing anything.
        with writer.begin() as held, reader.connect() as second:
            held.execute(text("SELECT 1"))
            with reader.begin() as deferred:
                assert deferred.execute(text("SELECT count(*) FROM t")).scalar() == 0
            with (
                pytest.raises(OperationalError, match="locked"),
                second.execution_options(**{IMMEDIATE: True}).begin(),
            ):
                pass
    finally:
        writer.dispose()
        reader.dispose()


def test_owner_mark_and_revision(tmp_path: Path) -> None:
    engine = create_sqlite_engine(f"sqlite:///{tmp_path / 'd.db'}", busy_timeout_ms=0, synchronous="NORMAL")
    try:
        with engine.begin() as connection:
            assert (application_id(connection), sqlite_owner(connection)) == (0, None)
            mark_sqlite_owner(connection, ITEM_BANK_APPLICATION_ID)
        with engine.connect() as connection:
            assert sqlite_owner(connection) == ITEM_BANK_OWNER
        assert schema_revision(engine) is None
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num TEXT)"))
            connection.execute(text("INSERT INTO alembic_version VALUES ('0002')"))
        assert schema_revision(engine) == "0002"
    finally:
        engine.dispose()


def _open_temp_files() -> int:
    """SQLite's temporary files this process holds open (named etilqs_*, deleted once opened)."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found += "etilqs_" in os.readlink(f"/proc/self/fd/{fd}")
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads the process's open files from /proc")
def test_a_large_statement_in_a_transaction_keeps_its_undo_in_memory(tmp_path: Path) -> None:
    # An advance inserts a module's items in one statement inside its transaction; SQLite keeps that statement's
    # undo, and past 64 KiB it went to a temp file written on the writer every advance waits for.
    engine = create_sqlite_engine(f"sqlite:///{tmp_path / 'a.db'}", busy_timeout_ms=0, synchronous="FULL")
    before = _open_temp_files()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, w BLOB)")
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t (v, w) VALUES ('first', x'00')")
            rows = [{"v": f"k{i}", "w": os.urandom(2000)} for i in range(200)]
            connection.execute(text("INSERT INTO t (v, w) VALUES (:v, :w)"), rows)
            connection.exec_driver_sql("UPDATE t SET w = randomblob(2000) WHERE id > 1")
            assert _open_temp_files() == before
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 201
    finally:
        engine.dispose()
