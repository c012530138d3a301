"""Database plumbing of both services' storage packages (and only theirs): SQLite engines, owner marks, revisions.

The one module of toefl_core that imports SQLAlchemy; the import contracts in pyproject.toml let only
item_service.storage and session_service.storage import it.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from toefl_core.ownership import OWNER_BY_APPLICATION_ID

# Execution option: this connection's transactions take the write lock at BEGIN (BEGIN IMMEDIATE).
IMMEDIATE = "sqlite_begin_immediate"
# Execution option of a read that is exactly one statement: no BEGIN around it (it is its own snapshot).
ONE_STATEMENT = "toefl_one_statement"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_sqlite_engine(
    url: str,
    *,
    busy_timeout_ms: int,
    synchronous: str,
    immediate: bool = False,
    wal_on_connect: bool = False,
    **engine_options: Any,
) -> Engine:
    """A SQLite engine whose connections wait `busy_timeout_ms` for a lock, enforce foreign keys, sync at the
    given level (NORMAL, FULL) and keep temporary files in memory, with transactions begun by us: BEGIN IMMEDIATE
    when `immediate` or the connection's IMMEDIATE option says so, none at all for a ONE_STATEMENT read.

    `wal_on_connect` sets WAL on every connection; a service that must check a file's owner mark before changing
    it leaves it off and calls `enable_wal` once the mark is its own.
    """
    engine = create_engine(url, **engine_options)

    def on_connect(dbapi_connection: Any, _record: object) -> None:
        # The driver's own implicit transactions would leave SELECTs outside any transaction; we issue BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        # A statement that changes many rows inside a transaction (an advance's module items) keeps the undo of
        # that one statement: past 64 KiB SQLite spills it to a temp file, written on every such statement.
        cursor.execute("PRAGMA temp_store = MEMORY")
        if wal_on_connect:
            # WAL lets readers run while a writer commits; the mode is stored in the file itself.
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    def on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get(ONE_STATEMENT):
            # A single SELECT is a snapshot of its own in SQLite: BEGIN and ROLLBACK around it are pure cost.
            return
        # A writer takes the write lock up front: a deferred transaction that reads and then writes can fail
        # with SQLITE_BUSY instead of waiting when another writer committed in between.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate or options.get(IMMEDIATE) else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


# A server's host name resolved once per process, the addresses its connections use from then on.
_resolved: dict[tuple[str, str], str] = {}
_resolving = threading.Lock()


def create_server_engine(url: str, **engine_options: Any) -> Engine:
    """An engine on a database server (PostgreSQL) whose connections resolve the server's host name only once.

    A connection opened while calls wait must not wait for DNS: in a container network whose resolver forwards
    what it does not know to an unreachable upstream (AAAA queries for the service name, search domains), each
    look-up took ~5 s there, and a burst of calls opening pool connections timed out at the gateway (the images
    test on PostgreSQL). The name is resolved again after a connection to the cached address fails: the server
    may have come back elsewhere.
    """
    engine = create_engine(url, pool_pre_ping=True, **engine_options)

    def do_connect(dialect: Any, _record: object, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        host = cparams.get("host")
        if not host or "hostaddr" in cparams or host.startswith("/") or "," in host:
            return None  # a socket path, an address given, or several hosts: the driver's own way
        key = (str(host), str(cparams.get("port") or 5432))
        with _resolving:
            address = _resolved.get(key)
            if address is None:
                found = socket.getaddrinfo(key[0], key[1], proto=socket.IPPROTO_TCP, type=socket.SOCK_STREAM)
                address = _resolved[key] = str(found[0][4][0])
        try:
            return dialect.connect(*cargs, **{**cparams, "hostaddr": address})
        except Exception:
            with _resolving:
                _resolved.pop(key, None)
            raise

    event.listen(engine, "do_connect", do_connect)
    return engine


def enable_wal(engine: Engine) -> None:
    """Switch the file to WAL, on the driver's connection: SQLite cannot change the journal mode inside a BEGIN."""
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA journal_mode = WAL")
    finally:
        raw.close()


def application_id(connection: Connection) -> int:
    """The SQLite file header's application_id (0 when none was set)."""
    return int(connection.exec_driver_sql("PRAGMA application_id").scalar() or 0)


def sqlite_owner(connection: Connection) -> str | None:
    """The owner a SQLite file's application_id names, None when it names none of ours."""
    return OWNER_BY_APPLICATION_ID.get(application_id(connection))


def mark_sqlite_owner(connection: Connection, value: int) -> None:
    """Write the owner mark into a SQLite file's header."""
    connection.exec_driver_sql(f"PRAGMA application_id = {int(value)}")


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, None before the first migration."""
    # Read the version table directly: MigrationContext logs two INFO lines per call, and readiness
    # probes ask for the revision every few seconds.
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)
