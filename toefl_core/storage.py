"""Database plumbing of both services' storage packages (and only theirs): SQLite engines, owner marks, revisions.

The one module of toefl_core that imports SQLAlchemy; the import contracts in pyproject.toml let only
item_service.storage and session_service.storage import it.
"""

from __future__ import annotations

import collections
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Insert,
    Select,
    Update,
    bindparam,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from toefl_core.lru import LRU
from toefl_core.ownership import OWNER_BY_APPLICATION_ID

# Shapes of a statement's IN lists whose SQL is kept (`_DriverForm.bound`): a group of answers gives one per count
# of its sessions and of its request ids; one not kept is expanded again, about 25 µs.
MAX_SHAPES = 512
# Row counts a multi-row INSERT is sent in (`DriverInsert`): a group of rows goes as the fewest statements of these
# counts that add up to it, so that SQLAlchemy compiles a few statements (one of 128 rows takes ~20 ms) rather than
# one per count of rows.
INSERT_COUNTS = (128, 64, 32, 16, 8, 4, 2, 1)
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


class DriverRead:
    """A read built with SQLAlchemy Core, compiled once per dialect and run on the driver's own cursor: the same
    SQL, and rows read by position and by column name as SQLAlchemy's are.

    For the reads of every advance and every group of answers: SQLAlchemy's execution of a statement it has
    compiled already costs about as much again as SQLite's own work for an indexed read (docs/PERFORMANCE.md).
    The columns' types convert parameters and values as SQLAlchemy has them convert; a list bound into IN (...)
    is expanded by SQLAlchemy once per shape of the lists (on SQLite). It goes through `Connection.execute`,
    with the same SQL, for what only SQLAlchemy does at execution (a list on PostgreSQL, a value computed then)
    and on a connection whose statements someone listens to (a test watching the SQL). The driver's errors are
    raised as SQLAlchemy raises them (`DBAPIError` and its kinds).
    """

    def __init__(self, statement: Select[*tuple[Any, ...]] | Insert) -> None:
        self.statement = statement
        self._forms: dict[str, _DriverForm] = {}

    def all(self, connection: Connection, parameters: Mapping[str, Any]) -> list[Any]:
        dialect = connection.dialect
        form = self._forms.get(dialect.name)
        if form is None:
            form = self._forms[dialect.name] = _DriverForm(self.statement, dialect, reads=True)
        if not form.runnable or _watched(connection):
            return list(connection.execute(self.statement, parameters).all())
        sql, values = form.bound(parameters)
        cursor = _run_on_driver(connection, sql, values, many=False)
        try:
            found = cursor.fetchall()
            if not form.converters_known:
                form.know_converters(cursor.description)
        finally:
            cursor.close()
        return form.rows(found)

    def first(self, connection: Connection, parameters: Mapping[str, Any]) -> Any | None:
        rows = self.all(connection, parameters)
        return rows[0] if rows else None


class DriverWrite:
    """An INSERT or UPDATE built with SQLAlchemy Core and run on the driver's cursor as DriverRead runs a read,
    for one parameter set or many (executemany): compiled once per dialect and per set of parameter names (an
    UPDATE sets the columns its parameters name).

    For the statements of an advance's write, on the writer every answer waits for. It goes through
    `Connection.execute` where DriverRead does, and for a default SQLAlchemy computes in Python or a RETURNING.
    """

    def __init__(self, statement: Insert | Update) -> None:
        self.statement = statement
        self._forms: dict[tuple[str, bool, frozenset[str]], _DriverForm] = {}

    def run(self, connection: Connection, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        many = not isinstance(parameters, Mapping)
        rows: Sequence[Mapping[str, Any]] = parameters if not isinstance(parameters, Mapping) else [parameters]
        if not rows:
            return
        dialect = connection.dialect
        key = (dialect.name, many, frozenset(rows[0]))
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = _DriverForm(self.statement, dialect, column_keys=sorted(rows[0]), many=many)
        if not form.runnable or _watched(connection):
            connection.execute(self.statement, parameters)
            return
        values = [form.values(row) for row in rows] if many else form.values(rows[0])
        _run_on_driver(connection, form.sql, values, many=many).close()


class DriverInsert:
    """A multi-row INSERT … RETURNING run on the driver's cursor: the statement given, with N rows of VALUES for
    each count N of INSERT_COUNTS, compiled by SQLAlchemy once per dialect and run as DriverRead runs a read; a
    group of rows goes as the fewest of these statements that add up to it. Returns the rows RETURNING gives, in
    no promised order (match them to the rows by a unique key).

    For the answers of a group commit, on the writer: SQLAlchemy's own multi-row insert expands its VALUES and
    converts every row through its execution on each call.
    """

    def __init__(self, statement: Insert, columns: Sequence[str]) -> None:
        self.statement = statement
        self.columns = tuple(columns)
        self._reads: dict[int, DriverRead] = {}

    def rows(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        found: list[Any] = []
        at = 0
        while at < len(rows):
            count = next(n for n in INSERT_COUNTS if n <= len(rows) - at)
            values = {
                f"{column}_{i}": row[column]
                for i, row in enumerate(rows[at : at + count])
                for column in self.columns
            }
            found.extend(self._read(count).all(connection, values))
            at += count
        return found

    def _read(self, count: int) -> DriverRead:
        read = self._reads.get(count)
        if read is None:
            # Each value a parameter named by its column and row, typed by its column.
            table = self.statement.table.c
            rows = [
                {column: bindparam(f"{column}_{i}", type_=table[column].type) for column in self.columns}
                for i in range(count)
            ]
            read = self._reads[count] = DriverRead(self.statement.values(rows))
        return read


def _run_on_driver(connection: Connection, sql: str, values: Any, *, many: bool) -> Any:
    """The driver's cursor once it ran `sql`; its errors raised as SQLAlchemy raises them."""
    dialect = connection.dialect
    proxied = connection.connection
    cursor = proxied.cursor()
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
    except dialect.loaded_dbapi.Error as failure:
        invalidated = dialect.is_disconnect(failure, proxied.dbapi_connection, cursor)
        cursor.close()
        if invalidated:
            connection.invalidate(failure)
        raise DBAPIError.instance(
            sql, values, failure, dialect.loaded_dbapi.Error, connection_invalidated=invalidated, dialect=dialect
        ) from failure
    except BaseException:
        cursor.close()
        raise
    return cursor


def _watched(connection: Connection) -> bool:
    dispatch = connection.dispatch
    return bool(dispatch.before_cursor_execute) or bool(dispatch.after_cursor_execute)


class _DriverForm:
    """A statement as one dialect's driver runs it: its SQL, where each of its parameters comes from, its rows."""

    def __init__(
        self,
        statement: Select[*tuple[Any, ...]] | Insert | Update,
        dialect: Dialect,
        *,
        column_keys: list[str] | None = None,
        many: bool = False,
        reads: bool = False,
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys, for_executemany=many)
        # The SQL when no list is expanded into IN (...); each shape of the lists has its own (`bound`).
        self.sql = compiled.string
        binds = compiled.binds
        self._compiled = compiled
        # What a parameter's type converts for the driver (a float, a Boolean on SQLite), as SQLAlchemy does.
        self.processors = {
            name: processor
            for name, bind in binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        # A value bound when the statement was built (a status compared with a constant) is given here, a
        # caller's parameter by name.
        self.built = {name: bind.value for name, bind in binds.items() if not bind.required}
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.names = tuple(binds)
        # A list bound into IN (...): one placeholder per element, the SQL made for each shape of the lists.
        self.expanding = tuple(name for name, bind in binds.items() if bind.expanding)
        self._shapes: LRU[tuple[int, ...], tuple[str, tuple[_Placeholder, ...]]] = LRU(MAX_SHAPES)
        # The writer alone expands lists today (a group of answers' reads); any thread may tomorrow, and a `get`
        # racing a `put` that forgets its key would fail.
        self._shapes_lock = threading.Lock()
        self.runnable = not (
            compiled.escaped_bind_names
            or compiled.literal_execute_params
            or any(not bind.expanding for bind in compiled.post_compile_params)
            or compiled.insert_prefetch
            or compiled.update_prefetch
            # A RETURNING's rows are read by DriverRead (a DriverInsert's), not by a write.
            or (compiled.effective_returning and not reads)
            or any(bind.callable is not None for bind in binds.values())
            # Expanded lists on the drivers that take placeholders by position (SQLite's): on PostgreSQL a
            # statement's cost is its round trip.
            or (self.expanding and not (compiled.positional and self._expands_by_slot()))
        )
        columns = list(statement.selected_columns if isinstance(statement, Select) else statement.exported_columns)
        self.row_type: Any = collections.namedtuple(  # type: ignore[misc]
            "Row", [column.key or f"column_{at}" for at, column in enumerate(columns)], rename=True
        )
        self._types = [column.type.dialect_impl(dialect) for column in columns]
        self._dialect = dialect
        # What each column's type converts from the driver's value, known at the first result: a driver's type
        # code for a column (PostgreSQL's float or numeric) decides it.
        self.converters: list[Any] | None = None
        self.converters_known = False

    def know_converters(self, description: Sequence[Sequence[Any]]) -> None:
        converters = [
            type_.result_processor(self._dialect, column[1])
            for type_, column in zip(self._types, description, strict=True)
        ]
        self.converters = converters if any(c is not None for c in converters) else None
        self.converters_known = True

    def bound(self, parameters: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL to run with these parameters and its values in the driver's form."""
        if not self.expanding:
            return self.sql, self.values(parameters)
        given = {**self.built, **parameters}
        shape = tuple(len(given[name]) for name in self.expanding)
        with self._shapes_lock:
            expanded = self._shapes.get(shape)
        if expanded is None:
            expanded = self._expand(shape)
            with self._shapes_lock:
                self._shapes.put(shape, expanded)
        sql, placeholders = expanded
        values = []
        for name, at, processor in placeholders:
            value = given[name] if at is None else given[name][at]
            values.append(value if processor is None else processor(value))
        return sql, tuple(values)

    def _expand(self, shape: tuple[int, ...]) -> tuple[str, tuple[_Placeholder, ...]]:
        """The SQL of lists of this shape, and where each of its placeholders takes its value from and how it is
        converted: SQLAlchemy expands a probe whose every value names its own place."""
        probe: dict[str, Any] = {name: _Slot(name, None) for name in self.names}
        probe.update(
            {name: [_Slot(name, at) for at in range(n)] for name, n in zip(self.expanding, shape, strict=True)}
        )
        state = self._compiled.construct_expanded_state(probe)
        slots = [state.parameters[key] for key in state.positiontup or ()]
        if not all(isinstance(slot, _Slot) for slot in slots):
            raise _NotBySlot(state.statement)
        return state.statement, tuple((slot.name, slot.at, self.processors.get(slot.name)) for slot in slots)

    def _expands_by_slot(self) -> bool:
        """Whether each placeholder of an expanded list takes one element (not a tuple's parts, say)."""
        try:
            self._expand(tuple(1 for _ in self.expanding))
        except _NotBySlot:
            return False
        return True

    def values(self, parameters: Mapping[str, Any]) -> Any:
        given = {**self.built, **parameters}
        for name, processor in self.processors.items():
            if name in given:
                given[name] = processor(given[name])
        if self.order is not None:
            return tuple(given[name] for name in self.order)
        return {name: given[name] for name in self.names}

    def rows(self, found: Sequence[Any]) -> list[Any]:
        make = self.row_type._make
        if self.converters is None:
            return [make(row) for row in found]
        converters = self.converters
        return [
            make(
                value if convert is None else convert(value)
                for convert, value in zip(converters, row, strict=True)
            )
            for row in found
        ]


# A placeholder of a statement whose lists are expanded: the parameter it takes its value from, its place in that
# parameter's list (None: not a list), and its type's conversion for the driver (None: none).
_Placeholder = tuple[str, int | None, Callable[[Any], Any] | None]


@dataclass(frozen=True)
class _Slot:
    """A probe's value: the parameter a placeholder takes its value from, and its place in that parameter's
    list (None: not a list)."""

    name: str
    at: int | None


class _NotBySlot(Exception):
    """An expanded statement whose placeholders do not each take one probe's value."""
