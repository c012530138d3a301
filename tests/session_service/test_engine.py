"""Read connections of user_data.db: a one-statement read opens no transaction on SQLite, any other read does."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text

from session_service.storage.engine import Database


def _in_transaction(conn: Connection) -> bool:
    driver = conn.connection.driver_connection
    assert driver is not None
    return bool(driver.in_transaction)


def test_only_a_one_statement_read_runs_outside_a_transaction(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'user_data.db'}")
    try:
        with db.read_statement() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            assert not _in_transaction(conn)
        with db.reading() as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
            assert _in_transaction(session.connection())
        with db.read_transaction() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            assert _in_transaction(conn)
        with db.unit_of_work() as tx:
            tx.execute(text("SELECT 1"))
            assert _in_transaction(tx)
    finally:
        db.dispose()
