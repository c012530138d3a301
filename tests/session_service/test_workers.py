"""Where storage calls run: short lookups on the event loop on SQLite only, other reads and writes on threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from session_service.storage.engine import Database
from session_service.workers import Workers


def _thread(_db: Database) -> int:
    return threading.get_ident()


@pytest.fixture
def sqlite_workers(tmp_path: Path) -> Workers:
    return Workers(Database(f"sqlite:///{tmp_path / 'user_data.db'}"))


async def test_a_lookup_runs_on_the_event_loop_on_sqlite(sqlite_workers: Workers) -> None:
    try:
        here = threading.get_ident()
        assert await sqlite_workers.lookup(_thread) == here
        assert await sqlite_workers.read(_thread) != here
        assert await sqlite_workers.write(_thread) != here
    finally:
        sqlite_workers.close()
        sqlite_workers.db.dispose()


async def test_a_lookup_runs_on_a_reader_thread_on_postgresql() -> None:
    # No connection is opened: the engine connects lazily and the function never touches it.
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    workers = Workers(db)
    try:
        assert db.is_sqlite is False
        assert await workers.lookup(_thread) != threading.get_ident()
    finally:
        workers.close()
        db.dispose()
