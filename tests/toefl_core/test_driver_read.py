"""DriverRead, DriverWrite: Core statements on the driver's cursor do what SQLAlchemy does (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Dialect,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.support.databases import backend_url
from toefl_core import storage
from toefl_core.storage import DriverInsert, DriverRead, DriverWrite

METADATA = MetaData()
PEOPLE = Table(
    "people",
    METADATA,
    Column("person_id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("age", Integer),
    Column("active", Boolean, nullable=False),
    Column("score", Float),
)
# Columns no driver needs SQLAlchemy to convert: what DriverWrite runs on the driver's cursor.
GRADES = Table(
    "grades",
    MetaData(),
    Column("grade_id", String, primary_key=True),
    Column("person", String, nullable=False),
    Column("points", Integer),
    Column("weight", Float),
)
ROWS: list[dict[str, Any]] = [
    {"person_id": "p1", "name": "Ada", "age": 36, "active": True, "score": 1.5},
    {"person_id": "p2", "name": "Alan", "age": None, "active": False, "score": None},
    {"person_id": "p3", "name": "Grace", "age": 85, "active": True, "score": -2.25},
]
# A caller's parameter used twice, a constant bound when the statement is built, a label; a Boolean and a Float,
# whose values SQLAlchemy converts from some drivers'.
BY_NAME_OR_ACTIVE = (
    select(PEOPLE.c.person_id, PEOPLE.c.age.label("years"), PEOPLE.c.active, PEOPLE.c.score)
    .where(
        (PEOPLE.c.name == bindparam("name")) | (PEOPLE.c.active.is_(True) & (PEOPLE.c.name != bindparam("name")))
    )
    .where(PEOPLE.c.person_id != "nobody")
    .order_by(PEOPLE.c.person_id)
)


def refuse_sqlalchemys_execution(patch: pytest.MonkeyPatch) -> None:
    """From here on, a statement run through `Connection.execute` fails the test: it ran on the driver's cursor."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("ran through Connection.execute")

    patch.setattr(Connection, "execute", refuse)


@contextmanager
def watching(engine: Engine) -> Iterator[list[str]]:
    """The SQL the engine's cursors run meanwhile, as a listener of SQLAlchemy's sees it."""
    seen: list[str] = []

    def watch(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", watch)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = backend_url(request, tmp_path / "people.db")
    made = create_engine(url)
    METADATA.create_all(made)
    with made.begin() as connection:
        connection.execute(PEOPLE.insert(), ROWS)
    yield made
    made.dispose()


def through_sqlalchemy(connection: Connection, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in connection.execute(BY_NAME_OR_ACTIVE, parameters).all()]


def test_rows_are_sqlalchemys_by_position_and_by_name_without_sqlalchemys_execution(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = DriverRead(BY_NAME_OR_ACTIVE)
    with engine.connect() as connection:
        expected = through_sqlalchemy(connection, {"name": "Alan"})

        refuse_sqlalchemys_execution(monkeypatch)
        rows = read.all(connection, {"name": "Alan"})
        # Ada by name, Grace as active: the second use of the parameter and the constant both bound.
        ada = read.all(connection, {"name": "Ada"})
        first_active = read.first(connection, {"name": "nobody"})
        missing = DriverRead(select(PEOPLE.c.name).where(PEOPLE.c.person_id == bindparam("id"))).first(
            connection, {"id": "p9"}
        )
    assert expected == [("p1", 36, True, 1.5), ("p2", None, False, None), ("p3", 85, True, -2.25)]
    assert [tuple(row) for row in rows] == expected
    assert [(row.person_id, row.years, row.active, row.score) for row in rows] == expected
    assert all(type(row.active) is bool for row in rows)
    assert [type(row.score) for row in rows] == [float, type(None), float]
    assert [tuple(row) for row in ada] == [("p1", 36, True, 1.5), ("p3", 85, True, -2.25)]
    assert first_active is not None and tuple(first_active) == ("p1", 36, True, 1.5)
    assert missing is None


def test_a_watched_connection_goes_through_sqlalchemy(engine: Engine) -> None:
    with engine.connect() as connection, watching(engine) as seen:
        rows = DriverRead(BY_NAME_OR_ACTIVE).all(connection, {"name": "Alan"})
    assert [tuple(row) for row in rows] == [
        ("p1", 36, True, 1.5),
        ("p2", None, False, None),
        ("p3", 85, True, -2.25),
    ]
    assert len(seen) == 1 and "people" in seen[0], "a listener sees the statement it watches for"


def test_lists_expanded_into_in_of_every_length_on_sqlites_driver(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fewer shapes kept than asked for: the SQL of a forgotten one is expanded again.
    monkeypatch.setattr(storage, "MAX_SHAPES", 2)
    # Two lists, a constant between them, a Boolean converted on the way: as a group of answers reads.
    in_lists = DriverRead(
        select(PEOPLE.c.person_id, PEOPLE.c.name)
        .where(
            PEOPLE.c.person_id.in_(bindparam("ids", expanding=True)),
            PEOPLE.c.name != "nobody",
            PEOPLE.c.active.in_(bindparam("states", expanding=True)),
        )
        .order_by(PEOPLE.c.person_id)
    )
    asked: list[dict[str, Any]] = [
        {"ids": ["p1", "p3"], "states": [True]},
        {"ids": ["p1", "p2", "p3"], "states": [True, False]},
        {"ids": ["p2"], "states": [False]},
        {"ids": [], "states": [True]},
        {"ids": ["p3", "p1"], "states": [False]},
        {"ids": ["p1", "p3"], "states": [True]},
    ]
    with engine.connect() as connection:
        expected = [[tuple(r) for r in connection.execute(in_lists.statement, p).all()] for p in asked]
        if engine.dialect.name == "sqlite":
            refuse_sqlalchemys_execution(monkeypatch)
        found = [[tuple(r) for r in in_lists.all(connection, p)] for p in asked]
    assert expected[:4] == [
        [("p1", "Ada"), ("p3", "Grace")],
        [("p1", "Ada"), ("p2", "Alan"), ("p3", "Grace")],
        [("p2", "Alan")],
        [],
    ]
    assert found == expected


def test_the_drivers_errors_are_raised_as_sqlalchemys(engine: Engine) -> None:
    read = DriverRead(BY_NAME_OR_ACTIVE)
    with engine.begin() as connection:
        PEOPLE.drop(connection)
    with engine.connect() as connection, pytest.raises(DBAPIError) as raised:
        read.all(connection, {"name": "Ada"})
    assert not isinstance(raised.value, IntegrityError)
    assert "people" in str(raised.value.orig)
    assert raised.value.statement is not None and "people" in raised.value.statement


def test_writes_one_or_many_rows_an_update_setting_the_columns_named(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add = DriverWrite(insert(GRADES))
    change = DriverWrite(update(GRADES).where(GRADES.c.grade_id == bindparam("the_id")))
    GRADES.create(engine)
    with engine.begin() as connection, monkeypatch.context() as patched:
        refuse_sqlalchemys_execution(patched)
        add.run(connection, {"grade_id": "g1", "person": "Ada"})
        add.run(
            connection,
            [
                {"grade_id": "g2", "person": "Alan", "points": 50, "weight": 0.5},
                {"grade_id": "g3", "person": "Grace", "points": 60, "weight": None},
            ],
        )
        change.run(connection, {"the_id": "g2", "points": 41})
        change.run(connection, {"the_id": "g1", "person": "Ada L.", "weight": 3.0})
        add.run(connection, [])
        # A Boolean (an integer to SQLite's driver) converted on the way in and out.
        DriverWrite(insert(PEOPLE)).run(connection, {"person_id": "p4", "name": "Edsger", "active": False})
        edsger = DriverRead(select(PEOPLE.c.active).where(PEOPLE.c.person_id == "p4")).all(connection, {})
    assert [tuple(row) for row in edsger] == [(False,)] and type(edsger[0].active) is bool
    with engine.connect() as connection:
        found = {row.grade_id: tuple(row) for row in connection.execute(select(GRADES)).all()}
    assert found == {
        "g1": ("g1", "Ada L.", None, 3.0),
        "g2": ("g2", "Alan", 41, 0.5),
        "g3": ("g3", "Grace", 60, None),
    }


def test_a_write_with_a_default_to_compute_or_a_watcher_goes_through_sqlalchemy(engine: Engine) -> None:
    # A default SQLAlchemy computes in Python is its to fill in.
    stamped = Table(
        "stamped", MetaData(), Column("key", String, primary_key=True), Column("at", Integer, default=7)
    )
    stamped.create(engine)
    GRADES.create(engine)
    with engine.begin() as connection:
        DriverWrite(insert(stamped)).run(connection, {"key": "a"})
        with watching(engine) as seen:
            DriverWrite(update(GRADES).where(GRADES.c.grade_id == bindparam("the_id"))).run(
                connection, {"the_id": "g1", "points": 37}
            )
        assert connection.execute(select(stamped.c.at)).scalar_one() == 7
    assert len(seen) == 1 and seen[0].startswith("UPDATE grades")


def test_a_duplicate_key_is_sqlalchemys_integrity_error(engine: Engine) -> None:
    GRADES.create(engine)
    add = DriverWrite(insert(GRADES))
    with engine.connect() as connection:
        add.run(connection, {"grade_id": "g1", "person": "Ada"})
        with pytest.raises(IntegrityError) as raised:
            add.run(connection, {"grade_id": "g1", "person": "Ada again"})
    assert raised.value.statement is not None and raised.value.statement.startswith("INSERT INTO grades")


class Shouted(TypeDecorator[str]):
    """A string stored in capitals and read back with an exclamation mark: conversions both ways."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else value.upper()

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else f"{value}!"


def test_a_columns_type_converts_the_values_both_ways_as_in_sqlalchemy(engine: Engine) -> None:
    calls = Table("calls", MetaData(), Column("call_id", Integer, primary_key=True), Column("word", Shouted))
    calls.create(engine)
    with engine.begin() as connection:
        DriverWrite(insert(calls)).run(connection, [{"call_id": 1, "word": "hello"}, {"call_id": 2, "word": None}])
        DriverWrite(update(calls).where(calls.c.call_id == bindparam("the_id"))).run(
            connection, {"the_id": 2, "word": "bye"}
        )
        stored = connection.execute(text("SELECT word FROM calls ORDER BY call_id")).scalars().all()
        read = DriverRead(select(calls.c.word).where(calls.c.word == bindparam("word")).order_by(calls.c.call_id))
        found = [row.word for row in read.all(connection, {"word": "Bye"})]
        listed = DriverRead(select(calls.c.call_id).where(calls.c.word.in_(bindparam("words", expanding=True))))
        both = sorted(row.call_id for row in listed.all(connection, {"words": ["hello", "Bye", "other"]}))
    assert stored == ["HELLO", "BYE"]
    assert found == ["BYE!"]
    assert both == [1, 2], "each element of a list converted as its column's type converts it"


def test_a_multi_row_insert_returns_every_rows_values_in_statements_of_few_counts(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = Table(
        "marks",
        MetaData(),
        Column("mark_id", Integer, primary_key=True, autoincrement=True),
        Column("person", String, nullable=False),
        Column("word", Shouted),
        Column("passed", Boolean, nullable=False),
    )
    marks.create(engine)
    add = DriverInsert(
        insert(marks).returning(marks.c.mark_id, marks.c.person, marks.c.word), ["person", "word", "passed"]
    )
    sent: list[str] = []
    run_on_driver = storage._run_on_driver

    def count_statements(connection: Connection, sql: str, values: Any, *, many: bool) -> Any:
        sent.append(sql)
        return run_on_driver(connection, sql, values, many=many)

    monkeypatch.setattr(storage, "_run_on_driver", count_statements)
    given: list[dict[str, Any]] = [
        {"person": f"p{n}", "word": f"w{n}" if n % 2 else None, "passed": n % 3 == 0} for n in range(134)
    ]
    with engine.begin() as connection, monkeypatch.context() as patched:
        refuse_sqlalchemys_execution(patched)
        none = add.rows(connection, [])
        sent_for_none = len(sent)
        one = add.rows(connection, given[:1])
        many = add.rows(connection, given[1:])
    assert none == [] and sent_for_none == 0
    # 133 rows: 128 + 4 + 1.
    assert len(sent) == 4 and [sql.count("(?") or sql.count("(%(") for sql in sent[1:]] == [128, 4, 1]
    returned = sorted((row.person, row.word, row.mark_id) for row in one + many)
    assert [(person, word) for person, word, _ in returned] == sorted(
        (row["person"], None if row["word"] is None else f"{row['word'].upper()}!") for row in given
    ), "every row returned, its values converted as SQLAlchemy converts them"
    assert len({mark_id for *_, mark_id in returned}) == len(given)
    with engine.connect() as connection:
        stored = {row.person: (row.word, row.passed) for row in connection.execute(select(marks))}
    assert stored["p1"] == ("W1!", False) and stored["p3"] == ("W3!", True) and stored["p0"] == (None, True)
    with engine.connect() as connection, pytest.raises(IntegrityError):
        add.rows(connection, [{"person": None, "word": "x", "passed": True}])
    with engine.begin() as connection, watching(engine) as seen:
        watched = add.rows(connection, [{"person": "q", "word": "x", "passed": False}] * 3)
    assert sorted((row.person, row.word) for row in watched) == [("q", "X!")] * 3
    assert len(seen) == 2 and all(sql.startswith("INSERT INTO marks") for sql in seen), "through SQLAlchemy: 2 + 1"
