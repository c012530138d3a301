"""Owner marks refused by real processes: the gaps left by tests/item_service and tests/session_service.

Already covered there: item_service `serve` on an unmarked file, on the user_data application_id set on a bank
and on each retired name; session_service `serve`/`check` on a file carrying the item bank's application_id,
`migrate` on an unmarked file with tables and on toefl_user_data.db. Here: the other service's *real* database
(whatever its file is called) under `serve`, `migrate` and `check`, unknown marks, `serve` on each retired name,
and PostgreSQL, where the mark is an owner row.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from launcher.postgres import DB_NAME, DB_USER, PostgresCluster
from launcher.procs import REPO_ROOT, clean_env
from tests.security.startup import assert_refused, start_expecting_refusal
from tests.session_service.conftest import require_temporary_url
from tests.support.tokens import TEST_TOKEN_KEY
from toefl_core.ownership import RETIRED_FILE_NAMES

UNKNOWN_APPLICATION_ID = 0x12345678


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sql(path: Path, statement: str) -> None:
    """One statement, committed and closed, so that nothing is left in a -wal file when the digest is taken."""
    with closing(sqlite3.connect(path)) as connection:
        connection.execute(statement)
        connection.commit()


def item_env(url: str) -> dict[str, str]:
    return clean_env(TOEFL_TOKEN_KEY=TEST_TOKEN_KEY, DATABASE_URL=url, ITEM_SERVICE_ADDR="127.0.0.1:0")


def session_env(url: str) -> dict[str, str]:
    require_temporary_url(url)
    # Nothing listens on port 1: a refusal must come before any call to item_service.
    return clean_env(
        TOEFL_TOKEN_KEY=TEST_TOKEN_KEY,
        USER_DATABASE_URL=url,
        SESSION_SERVICE_ADDR="127.0.0.1:0",
        ITEM_SERVICE_ADDR="127.0.0.1:1",
    )


def migrate_user_database(url: str) -> None:
    """A real user database, made the way production makes one."""
    done = subprocess.run(
        [sys.executable, "-m", "session_service", "migrate"],
        cwd=REPO_ROOT,
        env=session_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def user_database_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("user-database") / "user_data.db"
    migrate_user_database(f"sqlite:///{path}")
    return path


# ---- item_service


@pytest.mark.parametrize(
    ("name", "args"),
    [("user_data.db", None), ("item_bank.db", None), ("item_bank.db", ["migrate"])],
    ids=["serve user_data.db", "serve", "migrate"],
)
def test_item_service_refuses_a_real_user_database(
    user_database_template: Path, tmp_path: Path, name: str, args: list[str] | None
) -> None:
    """The mark decides, not the file name: the user database renamed item_bank.db is refused just the same."""
    database = tmp_path / name
    shutil.copyfile(user_database_template, database)
    before = digest(database)
    refusal = start_expecting_refusal(
        "item_service", workdir=tmp_path, env=item_env(f"sqlite:///{database}"), args=args
    )
    assert_refused(refusal, "belongs to 'user_data'", "refusing")
    assert digest(database) == before
    assert not (tmp_path / "backups").exists()


def test_item_service_refuses_an_unknown_application_id(item_bank_path: Path, tmp_path: Path) -> None:
    sql(item_bank_path, f"PRAGMA application_id = {UNKNOWN_APPLICATION_ID}")
    before = digest(item_bank_path)
    refusal = start_expecting_refusal(
        "item_service", workdir=tmp_path / "run", env=item_env(f"sqlite:///{item_bank_path}")
    )
    assert_refused(refusal, f"unknown application_id {UNKNOWN_APPLICATION_ID:#x}", "refusing")
    assert digest(item_bank_path) == before


# ---- session_service


def foreign_database(kind: str, directory: Path, demo_bank: Path) -> Path:
    """A database session_service must refuse, in rollback-journal mode as the item bank ships."""
    database = directory / "user_data.db"
    if kind == "the real item bank":
        shutil.copyfile(demo_bank, database)
    else:
        sql(database, "CREATE TABLE users (user_id TEXT PRIMARY KEY)")
    return database


FOREIGN = {"the real item bank": "belongs to 'item_bank'", "unmarked with tables": "no owner mark"}


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        ("the real item bank", None),
        ("the real item bank", ["migrate"]),
        ("the real item bank", ["check"]),
        ("unmarked with tables", None),
    ],
    ids=["serve", "migrate", "check", "serve unmarked with tables"],
)
def test_session_service_refuses_a_database_that_is_not_its_own(
    demo_bank_template: Path, tmp_path: Path, kind: str, args: list[str] | None
) -> None:
    """The demo bank itself (named user_data.db: the mark decides, not the name), or an unmarked one in use."""
    database = foreign_database(kind, tmp_path, demo_bank_template)
    refusal = start_expecting_refusal(
        "session_service", workdir=tmp_path / "run", env=session_env(f"sqlite:///{database}"), args=args
    )
    assert_refused(refusal, FOREIGN[kind], "refusing" if kind == "the real item bank" else "user_data")
    assert not (tmp_path / "demo-credentials.json").exists()


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_session_service_leaves_a_refused_database_untouched(
    demo_bank_template: Path, tmp_path: Path, kind: str
) -> None:
    database = foreign_database(kind, tmp_path, demo_bank_template)
    before = digest(database)
    assert_refused(
        start_expecting_refusal(
            "session_service", workdir=tmp_path / "run", env=session_env(f"sqlite:///{database}")
        ),
        FOREIGN[kind],
    )
    assert digest(database) == before


def test_session_service_refuses_an_unknown_application_id(user_database_template: Path, tmp_path: Path) -> None:
    database = tmp_path / "user_data.db"
    shutil.copyfile(user_database_template, database)
    sql(database, f"PRAGMA application_id = {UNKNOWN_APPLICATION_ID}")
    before = digest(database)
    refusal = start_expecting_refusal(
        "session_service", workdir=tmp_path / "run", env=session_env(f"sqlite:///{database}")
    )
    assert_refused(refusal, f"unknown application_id {UNKNOWN_APPLICATION_ID:#x}", "refusing")
    assert digest(database) == before


@pytest.mark.parametrize(
    ("name", "exists"),
    [*((name, False) for name in sorted(RETIRED_FILE_NAMES)), ("toefl_user_data.db", True)],
    ids=[*sorted(RETIRED_FILE_NAMES), "a real user database renamed"],
)
def test_session_service_serve_refuses_each_retired_name(
    user_database_template: Path, tmp_path: Path, name: str, exists: bool
) -> None:
    database = tmp_path / name
    if exists:
        shutil.copyfile(user_database_template, database)
    before = digest(database) if exists else None
    refusal = start_expecting_refusal(
        "session_service", workdir=tmp_path / "run", env=session_env(f"sqlite:///{database}")
    )
    assert_refused(refusal, name, "use 'user_data.db' instead")
    assert (digest(database) if database.exists() else None) == before


# ---- PostgreSQL: the mark is the owner row written by the first migration


@pytest.fixture
def postgres(cluster: PostgresCluster) -> PostgresCluster:
    cluster.reset_database()
    return cluster


def run_sql(cluster: PostgresCluster, statement: str) -> None:
    with psycopg.connect(host=str(cluster.socket_dir), user=DB_USER, dbname=DB_NAME) as connection:
        connection.execute(statement)


def owner_rows(cluster: PostgresCluster) -> list[tuple[str]]:
    with psycopg.connect(host=str(cluster.socket_dir), user=DB_USER, dbname=DB_NAME) as connection:
        return connection.execute("SELECT owner FROM database_owner").fetchall()


@pytest.mark.parametrize("args", [None, ["check"]], ids=["serve", "check"])
def test_session_service_refuses_a_postgresql_database_owned_by_the_item_bank(
    postgres: PostgresCluster, tmp_path: Path, args: list[str] | None
) -> None:
    migrate_user_database(postgres.url)
    run_sql(postgres, "UPDATE database_owner SET owner = 'item_bank'")
    refusal = start_expecting_refusal(
        "session_service", workdir=tmp_path, env=session_env(postgres.url), args=args
    )
    assert_refused(refusal, f"database '{DB_NAME}' belongs to 'item_bank'", "refusing")
    assert owner_rows(postgres) == [("item_bank",)]


def test_session_service_refuses_an_unmarked_postgresql_database_with_tables(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    run_sql(postgres, "CREATE TABLE items (item_id TEXT PRIMARY KEY)")
    refusal = start_expecting_refusal("session_service", workdir=tmp_path, env=session_env(postgres.url))
    assert_refused(refusal, "no owner mark", "user_data")


def test_item_service_refuses_the_user_database_on_postgresql(postgres: PostgresCluster, tmp_path: Path) -> None:
    migrate_user_database(postgres.url)
    refusal = start_expecting_refusal("item_service", workdir=tmp_path, env=item_env(postgres.url))
    assert_refused(refusal, "item_bank", "refusing")
    assert owner_rows(postgres) == [("user_data",)]
