"""The user database's migrations build what the models describe; 0003 moves pinned bytes without loss."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from session_service.storage.engine import SCHEMA_HEAD, Database, open_database
from session_service.storage.models import Base
from session_service.storage.schema import head_revision, migrate
from session_service.storage.sessions import module_content
from tests.support.databases import backend_url

# Two modules pinning the same two items and passage (as two students of one exam do), one a third item.
ITEMS = {"itm-a": b"\x0a\x05itm-a" + bytes(range(256)) * 8, "itm-b": b"\x0a\x05itm-b" + b"\xff" * 3000}
PASSAGE = b"\x0a\x05psg-1" + b"passage text " * 400
MODULES = {
    "mod-1": [("itm-a", 1), ("itm-b", 2)],
    "mod-2": [("itm-b", 2), ("itm-a", 1), ("itm-c", 7)],
}
ITEM_C = b"\x0a\x05itm-c\x00\x00" + b"c" * 1500


@pytest.fixture(params=["sqlite", "postgresql"])
def open_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Database]]:
    """A new, empty user database on each backend, and how to open it again."""
    url = backend_url(request, tmp_path / "user_data.db")
    opened: list[Database] = []

    def opener() -> Database:
        opened.append(open_database(url, create=True))
        return opened[-1]

    yield opener
    for db in opened:
        db.dispose()


def test_migrations_build_exactly_what_the_models_describe(open_db: Callable[[], Database]) -> None:
    db = open_db()
    assert migrate(db) == "0010"
    with db.write_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def _seed_at_0002(db: Database) -> None:
    """Rows as a 0002 database holds them: each module with its own copy of every pinned item's bytes."""
    with db.write_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (user_id, username, display_name, role, password_hash, create_ms, erased) "
                "VALUES ('usr-1', 'student1', '', 'student', 'x', 1, false)"
            )
        )
        for n, module_id in enumerate(MODULES, start=1):
            conn.execute(
                text(
                    "INSERT INTO sessions (session_id, student_id, scope, section, state, blueprint_version, "
                    "created_by, create_ms) VALUES (:s, 'usr-1', 'FULL', '', 'IN_PROGRESS', 'v1', 'usr-1', 1)"
                ),
                {"s": f"ses-{n}"},
            )
            conn.execute(
                text(
                    "INSERT INTO modules (module_id, session_id, sequence, plan_key, section, stage, status, "
                    "seed, assembly_record, start_ms, deadline_ms) "
                    "VALUES (:m, :s, 1, 'reading.router', 'SECTION_READING', 'ROUTER', 'OPEN', 1, :r, 1, 2)"
                ),
                {"m": module_id, "s": f"ses-{n}", "r": b"record"},
            )
            for position, (item_id, revision) in enumerate(MODULES[module_id]):
                conn.execute(
                    text(
                        "INSERT INTO module_items (module_id, item_id, position, revision, task_type, full_item) "
                        "VALUES (:m, :i, :p, :r, 'TASK_TYPE_READ_IN_DAILY_LIFE', :f)"
                    ),
                    {"m": module_id, "i": item_id, "p": position, "r": revision, "f": ITEMS.get(item_id, ITEM_C)},
                )
            conn.execute(
                text(
                    "INSERT INTO module_passages (module_id, passage_id, position, full_passage) "
                    "VALUES (:m, 'psg-1', 0, :f)"
                ),
                {"m": module_id, "f": PASSAGE},
            )


def test_0003_keeps_every_pinned_byte_and_stores_each_body_once(open_db: Callable[[], Database]) -> None:
    db = open_db()
    assert migrate(db, "0002") == "0002"
    _seed_at_0002(db)
    assert migrate(db) == "0010"
    for module_id, pinned in MODULES.items():
        found = module_content(db, module_id=module_id)
        assert [(i.item_id, i.revision) for i in found.items] == pinned
        assert [i.full_item for i in found.items] == [ITEMS.get(item_id, ITEM_C) for item_id, _ in pinned]
        assert found.passages == (PASSAGE,)
    with db.read_engine.connect() as conn:
        stored: dict[str, bytes] = {d: b for d, b in conn.execute(text("SELECT digest, body FROM pinned_content"))}
    # Three distinct items and one passage, each once, under its SHA-256.
    expected = [*ITEMS.values(), ITEM_C, PASSAGE]
    assert stored == {hashlib.sha256(body).hexdigest(): body for body in expected}
    with db.write_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_the_head_serve_checks_against_is_the_migrations_head() -> None:
    # `serve` knows the head without Alembic (it upgrades in a child only when the database is behind it): a new
    # migration must move engine.SCHEMA_HEAD with it.
    assert head_revision() == SCHEMA_HEAD
