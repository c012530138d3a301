"""Opening user_data.db: owner mark, WAL, foreign keys, busy timeout; its schema revision read without Alembic."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Executable, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from session_service.storage.models import DatabaseOwner
from toefl_core.errors import ResourceExhausted, Unavailable
from toefl_core.ownership import (
    OWNER_BY_APPLICATION_ID,
    USER_DATA_APPLICATION_ID,
    USER_DATA_FILE,
    USER_DATA_OWNER,
    OwnershipError,
    check_owner,
    identify,
    refuse_retired_name,
)
from toefl_core.storage import (
    ONE_STATEMENT,
    application_id,
    create_server_engine,
    create_sqlite_engine,
    enable_wal,
    is_sqlite,
    mark_sqlite_owner,
    sqlite_path,
)
from toefl_core.storage import schema_revision as read_schema_revision

log = logging.getLogger(__name__)
# The newest migration's revision, known without Alembic: `serve` compares the database's with it and upgrades in
# a child process only when they differ, so the serving process never loads Alembic (about 12 MB resident with
# Mako and Pygments). tests/session_service/test_migrations.py holds it to the migrations' real head.
SCHEMA_HEAD = "0010"
BUSY_TIMEOUT_MS = 30_000
# The uses of a thread's kept connections (Database._kept_connection).
_READ = "read"
_WRITE = "write"


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # FULL: an acknowledged answer survives a power cut too, not only a crash of the process.
    return create_sqlite_engine(
        url,
        busy_timeout_ms=BUSY_TIMEOUT_MS,
        synchronous="FULL",
        immediate=immediate,
        connect_args={"check_same_thread": False},
        pool_size=8,
        max_overflow=16,
    )


@contextmanager
def _unavailable_database() -> Iterator[None]:
    """A database that is locked, full or unreachable is the client's UNAVAILABLE/RESOURCE_EXHAUSTED, not INTERNAL.

    Nothing of the transaction was committed, so the client may retry (with the same request id) safely.
    """
    try:
        yield
    except OperationalError as exc:
        text_of = str(exc.orig).lower()
        if "locked" in text_of or "busy" in text_of:
            raise Unavailable(
                "the user database is busy (locked by another writer); nothing was saved; retry",
                reason="DATABASE_BUSY",
                retry_after_seconds=1.0,
            ) from exc
        if "full" in text_of:
            # No delay to promise: the disk fills up until an operator frees space.
            raise ResourceExhausted(
                "the user database's disk is full; nothing was saved; retry later", reason="DISK_FULL"
            ) from exc
        raise Unavailable(
            "the user database is unavailable; nothing was saved; retry shortly",
            reason="DATABASE_UNAVAILABLE",
            retry_after_seconds=1.0,
        ) from exc


# The single writer's unit of work: one write transaction on the Core connection, handed to the functions that
# apply the exam's rules to storage reads and writes (session_service.writer).
Tx = Connection


class Upsert:
    """An INSERT with an ON CONFLICT clause, whose statement differs between SQLite and PostgreSQL, built once for
    each: `build` gets the dialect's `insert`. Built at each call, such a statement cost more than running it, on
    the writer every answer waits for."""

    def __init__(self, build: Callable[[Callable[..., Any]], Executable]) -> None:
        self._build = build
        self._built: dict[str, Executable] = {}

    def __call__(self, connection: Connection) -> Executable:
        name = connection.dialect.name
        statement = self._built.get(name)
        if statement is None:
            insert = postgresql.insert if name == "postgresql" else sqlite.insert
            statement = self._built[name] = self._build(insert)
        return statement

    @classmethod
    def replacing(cls, entity: Any, *, key: str) -> Upsert:
        """Insert a row, or set every column but the key of the row stored under its key."""

        def build(insert: Callable[..., Any]) -> Executable:
            statement = insert(entity)
            columns = entity.__table__.c
            values = {column.name: statement.excluded[column.name] for column in columns if column.name != key}
            return statement.on_conflict_do_update(index_elements=[key], set_=values)  # type: ignore[no-any-return]

        return cls(build)


class SchemaError(Exception):
    """The user database is not at the schema this code needs and could not be brought to it."""


class Conflict(Exception):
    """A write met a unique key another writer stored first (a retried request id); nothing of it was kept."""


@contextmanager
def savepoint(tx: Tx) -> Iterator[None]:
    """A part of a unit of work that is undone alone when it meets a Conflict, the rest of it kept."""
    try:
        with tx.begin_nested():
            yield
    except IntegrityError as exc:
        raise Conflict(str(exc.orig)) from exc


class Database:
    """The engines and session factories of user_data.db."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            # More pooled connections than the threads that use them (one writer, four readers): a call never
            # waits for a new connection once the pool is warm.
            self.write_engine = create_server_engine(url, pool_size=8, max_overflow=8)
            # A read is one snapshot, as on SQLite: under READ COMMITTED each statement of a multi-statement read
            # (a session, then its modules) could see another process's commit land in between.
            self.read_engine = self.write_engine.execution_options(isolation_level="REPEATABLE READ")
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)
        # On SQLite, each thread keeps a connection for its one-statement reads and one for its units of work.
        self._kept_connections: list[Connection] = []
        self._own = threading.local()
        self._keeping = threading.Lock()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write transaction, committed (on disk) when the block ends without an exception."""
        with _unavailable_database(), self._writer.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with _unavailable_database(), self._reader.begin() as session:
            yield session

    @contextmanager
    def unit_of_work(self) -> Iterator[Tx]:
        """One write transaction on the Core connection, committed (on disk) when the block ends without an
        exception; a unique key met on the way is a Conflict."""
        try:
            with _unavailable_database():
                if not self.is_sqlite:
                    with self.write_engine.begin() as connection:
                        yield connection
                    return
                # The writer thread runs every answer's group commit and every advance: it keeps its connection
                # from one transaction to the next, where a checkout from the pool and its return cost about a
                # third of a small transaction's CPU.
                connection = self._kept_connection(_WRITE)
                try:
                    with connection.begin():
                        yield connection
                except BaseException as failure:
                    # Rolled back cleanly after a refusal or a unique key: kept. Anything else (the database
                    # locked, gone, full; a failed rollback): the next transaction starts on a new connection.
                    database_failed = isinstance(failure, DBAPIError) and not isinstance(failure, IntegrityError)
                    if database_failed or connection.invalidated or connection.in_transaction():
                        self._drop_kept_connection(_WRITE, connection)
                    raise
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc

    @contextmanager
    def read_transaction(self) -> Iterator[Connection]:
        """One read snapshot on the Core connection."""
        with _unavailable_database(), self.read_engine.begin() as connection:
            yield connection

    @contextmanager
    def read_statement(self) -> Iterator[Connection]:
        """A connection for a read that is exactly one statement: on SQLite no transaction is opened around it
        (the statement is its own snapshot); on PostgreSQL it runs in a transaction like any read."""
        if not self.is_sqlite:
            with _unavailable_database(), self.read_engine.connect() as connection:
                yield connection
            return
        # No transaction is ever begun on it, so the calling thread keeps the connection from one read to the
        # next: the event loop runs every answer's and advance's lookups inline, and a checkout from the pool
        # and its return cost about as much as the lookup itself.
        with _unavailable_database():
            connection = self._kept_connection(_READ)
            try:
                yield connection
            except BaseException:
                # Whatever state a failed read left it in, the next read starts on a new connection.
                self._drop_kept_connection(_READ, connection)
                raise

    def _kept_connection(self, use: str) -> Connection:
        """The calling thread's own connection for `use` (_READ: one-statement reads, _WRITE: units of work)."""
        kept: dict[str, Connection] = self._own.__dict__.setdefault("connections", {})
        connection = kept.get(use)
        # Closed: the engines were disposed of since (and, as with the pool, the next use opens a new one).
        if connection is None or connection.closed:
            if use == _READ:
                connection = self.read_engine.connect().execution_options(**{ONE_STATEMENT: True})
            else:
                connection = self.write_engine.connect()
            kept[use] = connection
            with self._keeping:
                self._kept_connections.append(connection)
        return connection

    def _drop_kept_connection(self, use: str, connection: Connection) -> None:
        self._own.__dict__.get("connections", {}).pop(use, None)
        with self._keeping:
            # Gone already when the engines were disposed of meanwhile.
            if connection in self._kept_connections:
                self._kept_connections.remove(connection)
        connection.invalidate()
        connection.close()

    def dispose(self) -> None:
        with self._keeping:
            kept, self._kept_connections = self._kept_connections, []
        for connection in kept:
            connection.close()
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


def _found_owner(db: Database) -> tuple[str | None, bool]:
    """The owner mark found in the database, and whether the database holds any table at all."""
    with db.write_engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        if db.is_sqlite:
            app_id = application_id(conn)
            if app_id == 0:
                return None, bool(tables)
            return OWNER_BY_APPLICATION_ID.get(app_id, f"unknown application_id {app_id:#x}"), bool(tables)
        if DatabaseOwner.__tablename__ not in tables:
            return None, bool(tables)
        return conn.execute(select(DatabaseOwner.owner)).scalar(), True


def owner_mark(db: Database) -> str:
    """The owner mark found in the database, "" when it has none."""
    return _found_owner(db)[0] or ""


def open_database(url: str, *, create: bool) -> Database:
    """Open the user database after checking its name and owner mark; `create` marks a brand-new empty one.

    Raises OwnershipError for a retired name, the item bank's mark, or an unmarked database that holds tables.
    """
    refuse_retired_name(url, use_instead=USER_DATA_FILE)
    db = Database(url)
    try:
        owner, has_tables = _found_owner(db)
        what = f"database {identify(url).database_name!r}"
        if owner is None and not has_tables:
            if not create:
                raise OwnershipError(f"{what} is empty and unmarked; run `python -m session_service migrate`")
            if db.is_sqlite:
                with db.write_engine.begin() as conn:
                    mark_sqlite_owner(conn, USER_DATA_APPLICATION_ID)
            log.info("marked the new %s as %s", what, USER_DATA_OWNER)
        else:
            check_owner(owner, expected=USER_DATA_OWNER, what=what)
        if db.is_sqlite:
            # Only once the mark is ours: the journal mode lives in the file, and a refused file stays as it was.
            enable_wal(db.write_engine)
    except BaseException:
        db.dispose()
        raise
    return db


def schema_revision(db: Database) -> str:
    return read_schema_revision(db.read_engine) or ""
