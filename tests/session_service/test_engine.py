"""Read connections of user_data.db: a one-statement read opens no transaction on SQLite, any other read does;
a thread keeps its one-statement connection, which sees every commit and is replaced after a failed read."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from session_service.storage.engine import Database
from toefl_core.errors import Unavailable


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


def test_a_thread_keeps_its_one_statement_connection_which_sees_each_commit(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'user_data.db'}")
    try:
        with db.unit_of_work() as tx:
            tx.execute(text("CREATE TABLE t (v INTEGER)"))
            tx.execute(text("INSERT INTO t VALUES (1)"))
        with db.read_statement() as first:
            assert first.execute(text("SELECT v FROM t")).scalar() == 1
        with db.unit_of_work() as tx:
            tx.execute(text("UPDATE t SET v = 2"))
        with db.read_statement() as again:
            assert again is first
            # No snapshot outlives its statement: the commit in between is seen.
            assert again.execute(text("SELECT v FROM t")).scalar() == 2
            assert not _in_transaction(again)
        others: list[Connection] = []

        def read_elsewhere() -> None:
            with db.read_statement() as conn:
                others.append(conn)
                assert conn.execute(text("SELECT v FROM t")).scalar() == 2

        reader = threading.Thread(target=read_elsewhere)
        reader.start()
        reader.join()
        assert len(others) == 1 and others[0] is not first
    finally:
        db.dispose()
    assert first.closed and others[0].closed
    # As with the pool, a read after the engines were disposed of opens a new connection.
    with db.read_statement() as reopened:
        assert reopened is not first and reopened.execute(text("SELECT v FROM t")).scalar() == 2
    db.dispose()


def test_a_failed_one_statement_read_leaves_the_next_one_a_new_connection(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'user_data.db'}")
    try:
        with db.read_statement() as first:
            assert first.execute(text("SELECT 1")).scalar() == 1
        with pytest.raises(Unavailable) as failed, db.read_statement() as conn:
            conn.execute(text("SELECT v FROM no_such_table"))
        assert isinstance(failed.value.__cause__, OperationalError)
        assert first.closed
        with db.read_statement() as after:
            assert after is not first
            assert after.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()
