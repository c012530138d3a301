"""Connections of user_data.db: a one-statement read opens no transaction on SQLite, any other read does; a thread
keeps its one-statement connection, which sees every commit and is replaced after a failed read, and its unit of
work connection, kept after a refusal or a unique key rolled back and replaced after a database failure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from session_service.storage.engine import Conflict, Database
from toefl_core.errors import FailedPrecondition, Unavailable


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A bare SQLite file (no schema: each test makes the table it needs), disposed of after the test."""
    database = Database(f"sqlite:///{tmp_path / 'user_data.db'}")
    yield database
    database.dispose()


def _in_transaction(conn: Connection) -> bool:
    driver = conn.connection.driver_connection
    assert driver is not None
    return bool(driver.in_transaction)


def test_only_a_one_statement_read_runs_outside_a_transaction(db: Database) -> None:
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


def test_a_thread_keeps_its_one_statement_connection_which_sees_each_commit(db: Database) -> None:
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
    db.dispose()
    assert first.closed and others[0].closed
    # As with the pool, a read after the engines were disposed of opens a new connection.
    with db.read_statement() as reopened:
        assert reopened is not first and reopened.execute(text("SELECT v FROM t")).scalar() == 2


def test_a_failed_one_statement_read_leaves_the_next_one_a_new_connection(db: Database) -> None:
    with db.read_statement() as first:
        assert first.execute(text("SELECT 1")).scalar() == 1
    with pytest.raises(Unavailable) as failed, db.read_statement() as conn:
        conn.execute(text("SELECT v FROM no_such_table"))
    assert isinstance(failed.value.__cause__, OperationalError)
    assert first.closed
    with db.read_statement() as after:
        assert after is not first
        assert after.execute(text("SELECT 1")).scalar() == 1


def _values(db: Database) -> list[int]:
    with db.read_statement() as conn:
        return [v for (v,) in conn.execute(text("SELECT v FROM t ORDER BY v"))]


def test_a_thread_keeps_its_unit_of_work_connection_and_holds_no_transaction_between_them(db: Database) -> None:
    with db.unit_of_work() as first:
        first.execute(text("CREATE TABLE t (v INTEGER PRIMARY KEY)"))
        first.execute(text("INSERT INTO t VALUES (1)"))
    assert not _in_transaction(first)
    with db.unit_of_work() as again:
        assert again is first
        again.execute(text("INSERT INTO t VALUES (2)"))
    # Committed, so another connection sees both rows, and another thread writes on a connection of its own.
    assert _values(db) == [1, 2]
    others: list[Connection] = []

    def write_elsewhere() -> None:
        with db.unit_of_work() as tx:
            others.append(tx)
            tx.execute(text("INSERT INTO t VALUES (3)"))

    writer = threading.Thread(target=write_elsewhere)
    writer.start()
    writer.join()
    assert len(others) == 1 and others[0] is not first
    assert _values(db) == [1, 2, 3]
    db.dispose()
    assert first.closed and others[0].closed
    with db.unit_of_work() as reopened:
        assert reopened is not first
        reopened.execute(text("INSERT INTO t VALUES (4)"))
    assert _values(db) == [1, 2, 3, 4]


def test_a_refused_or_conflicting_unit_of_work_is_rolled_back_and_its_connection_kept(db: Database) -> None:
    with db.unit_of_work() as first:
        first.execute(text("CREATE TABLE t (v INTEGER PRIMARY KEY)"))
        first.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(FailedPrecondition), db.unit_of_work() as tx:
        tx.execute(text("INSERT INTO t VALUES (2)"))
        raise FailedPrecondition("refused after a write")
    with pytest.raises(Conflict), db.unit_of_work() as tx:
        tx.execute(text("INSERT INTO t VALUES (3)"))
        tx.execute(text("INSERT INTO t VALUES (1)"))
    # Neither the refused write nor the one before the unique key was kept.
    assert _values(db) == [1]
    assert not first.closed and not _in_transaction(first)
    with db.unit_of_work() as after:
        assert after is first
        after.execute(text("INSERT INTO t VALUES (5)"))
    assert _values(db) == [1, 5]


def test_a_unit_of_work_the_database_failed_leaves_the_next_one_a_new_connection(db: Database) -> None:
    with db.unit_of_work() as first:
        first.execute(text("CREATE TABLE t (v INTEGER PRIMARY KEY)"))
    with pytest.raises(Unavailable) as failed, db.unit_of_work() as tx:
        tx.execute(text("INSERT INTO t VALUES (1)"))
        tx.execute(text("INSERT INTO no_such_table VALUES (1)"))
    assert isinstance(failed.value.__cause__, OperationalError)
    assert first.closed
    with db.unit_of_work() as after:
        assert after is not first
        after.execute(text("INSERT INTO t VALUES (2)"))
    assert _values(db) == [2]
