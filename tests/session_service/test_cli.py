"""The CLI and settings: owner marks and retired names refused, demo accounts idempotent, unsafe knobs refused."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from launcher.procs import REPO_ROOT
from session_service.blueprint import CURRENT_VERSION, BlueprintError
from session_service.config import load_settings
from session_service.storage.engine import SCHEMA_HEAD, open_database
from tests.session_service.conftest import UnsafeUserDatabase, require_temporary_url
from toefl_core.config import ConfigError
from toefl_core.ownership import (
    ITEM_BANK_APPLICATION_ID,
    RETIRED_FILE_NAMES,
    USER_DATA_APPLICATION_ID,
    OwnershipError,
)

# The browser tests' short form of the whole test.
SHORT_FORM = "toefl2026-short-v1"


def cli(*args: str, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "session_service", *args, url=url, **env)


def run_python(*args: str, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    require_temporary_url(url)
    base = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env={**base, "TOEFL_ENV": "development", "USER_DATABASE_URL": url, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_guard_refuses_user_databases_outside_the_temporary_folder() -> None:
    with pytest.raises(UnsafeUserDatabase):
        require_temporary_url(f"sqlite:///{REPO_ROOT / 'data' / 'user_data.db'}")
    with pytest.raises(UnsafeUserDatabase):
        require_temporary_url("postgresql+psycopg://u@db.example/users")
    with pytest.raises(UnsafeUserDatabase):
        require_temporary_url("postgresql+psycopg://u@/users?host=/var/run/postgresql")
    require_temporary_url(f"postgresql+psycopg://u@/users?host={tempfile.gettempdir()}/toefl-pg-x/sock")


def test_migrate_creates_a_marked_database_and_check_passes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'user_data.db'}"
    assert cli("check", url=url).returncode != 0
    assert cli("migrate", url=url).returncode == 0
    assert cli("check", url=url).returncode == 0
    with sqlite3.connect(tmp_path / "user_data.db") as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == USER_DATA_APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT owner FROM database_owner").fetchall() == [("user_data",)]


# Opens the database as `serve` does (its module's imports included) and says what it found.
OPEN_AS_SERVE = """
import json, sys
import session_service.__main__
from session_service.config import load_settings
from session_service.server import open_at_head
from session_service.storage.engine import schema_revision
from toefl_core.server import configure_logging
configure_logging()
db = open_at_head(load_settings())
alembic = sorted(name for name in sys.modules if name.split(".")[0] == "alembic")
print(json.dumps({"revision": schema_revision(db), "alembic": alembic}))
"""


def test_serve_upgrades_the_schema_in_a_child_and_never_loads_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'user_data.db'}"
    fresh = run_python("-c", OPEN_AS_SERVE, url=url)
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout) == {"revision": SCHEMA_HEAD, "alembic": []}
    # The child's upgrade, logged in the same stream: it did run.
    assert f"upgrading it to {SCHEMA_HEAD}" in fresh.stderr and "Running upgrade" in fresh.stderr
    again = run_python("-c", OPEN_AS_SERVE, url=url)
    assert json.loads(again.stdout) == {"revision": SCHEMA_HEAD, "alembic": []}
    assert "upgrading" not in again.stderr
    assert cli("check", url=url).returncode == 0


def test_serve_refuses_a_database_newer_than_its_code_and_says_why(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'user_data.db'}"
    assert cli("migrate", url=url).returncode == 0
    with sqlite3.connect(tmp_path / "user_data.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    served = cli("serve", url=url)
    assert served.returncode == 2 and "Traceback" not in served.stderr, served.stderr
    assert f"at schema revision '9999', not {SCHEMA_HEAD}" in served.stderr
    migrated = cli("migrate", url=url)
    assert migrated.returncode == 2 and "Traceback" not in migrated.stderr, migrated.stderr
    assert "cannot be upgraded to head" in migrated.stderr and "9999" in migrated.stderr


@pytest.mark.parametrize("command", ["serve", "check"])
def test_the_item_banks_database_is_refused(tmp_path: Path, command: str) -> None:
    path = tmp_path / "user_data.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA application_id = {ITEM_BANK_APPLICATION_ID}")
        conn.execute("CREATE TABLE test_items (id TEXT)")
    done = cli(command, url=f"sqlite:///{path}")
    assert done.returncode == 2 and "belongs to 'item_bank'" in done.stderr


def test_an_unmarked_database_with_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "user_data.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id TEXT)")
    done = cli("migrate", url=f"sqlite:///{path}")
    assert done.returncode == 2 and "no owner mark" in done.stderr


def test_retired_names_are_refused_naming_the_file_to_use(tmp_path: Path) -> None:
    done = cli("migrate", url=f"sqlite:///{tmp_path / 'toefl_user_data.db'}")
    assert done.returncode == 2 and "use 'user_data.db' instead" in done.stderr
    for name in RETIRED_FILE_NAMES:
        with pytest.raises(OwnershipError, match=r"use 'user_data\.db' instead"):
            open_database(f"sqlite:///{tmp_path / name}", create=True)
        assert not (tmp_path / name).exists()


def test_demo_accounts_are_created_once_and_keep_their_passwords(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'user_data.db'}"
    assert cli("create-demo-accounts", url=url, SESSION_FAST_PASSWORD_HASHING="1").returncode == 0
    credentials = tmp_path / "data" / "demo-credentials.json"
    first = json.loads(credentials.read_text())
    assert sorted(e["role"] for e in first) == ["admin", "author", "rater", "student", "student", "teacher"]
    assert all(set(e) == {"role", "username", "password"} and len(e["password"]) >= 12 for e in first)
    assert cli("create-demo-accounts", url=url, SESSION_FAST_PASSWORD_HASHING="1").returncode == 0
    assert json.loads(credentials.read_text()) == first
    with sqlite3.connect(tmp_path / "data" / "user_data.db") as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 6
        assert conn.execute("SELECT count(*) FROM enrolments").fetchone()[0] == 2
    production = cli("create-demo-accounts", url=url, TOEFL_ENV="production", TOEFL_TOKEN_KEY="k" * 40)
    assert production.returncode == 2 and "development only" in production.stderr


@pytest.mark.parametrize(
    ("knob", "value"),
    [("SESSION_TIME_SCALE", "0.5"), ("SESSION_FAST_PASSWORD_HASHING", "true"), ("SESSION_BLUEPRINT", SHORT_FORM)],
)
def test_test_only_knobs_are_refused_in_production(monkeypatch: pytest.MonkeyPatch, knob: str, value: str) -> None:
    monkeypatch.setenv("TOEFL_ENV", "production")
    monkeypatch.setenv("TOEFL_TOKEN_KEY", "p" * 48)
    monkeypatch.setenv(knob, value)
    with pytest.raises(ConfigError, match=knob):
        load_settings()


def test_new_sessions_follow_the_current_blueprint_unless_a_test_names_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SESSION_BLUEPRINT", raising=False)
    assert load_settings().blueprint_version == CURRENT_VERSION
    monkeypatch.setenv("SESSION_BLUEPRINT", SHORT_FORM)
    assert load_settings().blueprint_version == SHORT_FORM
    monkeypatch.setenv("SESSION_BLUEPRINT", "toefl1999")
    with pytest.raises(BlueprintError, match="toefl1999"):
        load_settings()


def test_the_daily_session_limit_defaults_to_ten_and_refuses_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSION_DAILY_SESSION_LIMIT", raising=False)
    assert load_settings().daily_session_limit == 10
    monkeypatch.setenv("SESSION_DAILY_SESSION_LIMIT", "25")
    assert load_settings().daily_session_limit == 25
    for bad in ("0", "-1", "2.5", "many"):
        monkeypatch.setenv("SESSION_DAILY_SESSION_LIMIT", bad)
        with pytest.raises(ConfigError, match="SESSION_DAILY_SESSION_LIMIT"):
            load_settings()


def test_only_user_database_url_is_opened(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("USER_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'item_bank.db'}")
    settings = load_settings()
    assert settings.database_url.endswith("/data/user_data.db")
    assert settings.data_dir == REPO_ROOT / "data"


def test_both_database_urls_on_one_database_are_refused_before_anything_is_created(tmp_path: Path) -> None:
    database = tmp_path / "user_data.db"
    done = cli("migrate", url=f"sqlite:///{database}", DATABASE_URL=f"sqlite:///{tmp_path}/./user_data.db")
    assert done.returncode == 2 and "name the same database" in done.stderr
    assert not database.exists()
