"""The item_service command line on real bank files: demo bank, migrate with backup and restore, check, export."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from item_service.storage.engine import SCHEMA_HEAD
from item_service.storage.schema import head_revision
from launcher.procs import REPO_ROOT, clean_env
from tests.support.tokens import TEST_TOKEN_KEY
from toefl_core.ownership import ITEM_BANK_APPLICATION_ID, USER_DATA_APPLICATION_ID


def cli(*args: str, database: Path | None = None) -> subprocess.CompletedProcess[str]:
    url = {"DATABASE_URL": f"sqlite:///{database}"} if database else {}
    env = clean_env(TOEFL_TOKEN_KEY=TEST_TOKEN_KEY, **url)
    return subprocess.run(
        [sys.executable, "-m", "item_service", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def content_digest(path: Path, tables: tuple[str, ...] = ()) -> str:
    """A digest of the rows of every table (or of `tables`) and of the owner mark: equal digests, equal content."""
    digest = hashlib.sha256()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        digest.update(str(connection.execute("PRAGMA application_id").fetchone()).encode())
        names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY 1")]
        for table in tables or names:
            rows = sorted(map(repr, connection.execute(f'SELECT * FROM "{table}"')))
            digest.update(f"{table}:{len(rows)}:{''.join(rows)}".encode())
    finally:
        connection.close()
    return digest.hexdigest()


def test_demo_bank_file(demo_bank_template: Path) -> None:
    connection = sqlite3.connect(f"file:{demo_bank_template}?mode=ro", uri=True)
    try:
        (application_id,) = connection.execute("PRAGMA application_id").fetchone()
        per_type = dict(
            connection.execute(
                "SELECT task_type, count(*) FROM test_items WHERE status = 'ITEM_STATUS_ACTIVE' GROUP BY task_type"
            ).fetchall()
        )
        statuses = {r[0] for r in connection.execute("SELECT DISTINCT status FROM test_items")}
        (journal_mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    finally:
        connection.close()
    assert application_id == ITEM_BANK_APPLICATION_ID
    assert journal_mode == "delete" and not demo_bank_template.with_name("item_bank.db-wal").exists()
    assert len(per_type) == 12 and sum(per_type.values()) >= 1000
    assert {"ITEM_STATUS_DRAFT", "ITEM_STATUS_IN_REVIEW", "ITEM_STATUS_RETIRED"} <= statuses


def test_migrate_backs_up_first_and_the_backup_restores(item_bank_path: Path, tmp_path: Path) -> None:
    original = content_digest(item_bank_path)
    assert f"revision {head_revision()}" in ok(cli("migrate", database=item_bank_path))
    backups = list((item_bank_path.parent / "backups").glob("item_bank-*.db"))
    assert len(backups) == 1
    assert content_digest(backups[0]) == original
    # Change the bank, then restore the backup over it.
    export = tmp_path / "export.jsonl"
    ok(cli("export", "--out", str(export), database=item_bank_path))
    lines = export.read_text().splitlines()
    edited = [line.replace("Demo", "Changed", 1) if '"item"' in line else line for line in lines]
    export.write_text("\n".join(edited) + "\n")
    ok(cli("import", str(export), database=item_bank_path))
    assert content_digest(item_bank_path) != original
    for suffix in ("-wal", "-shm"):
        item_bank_path.with_name(item_bank_path.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(backups[0], item_bank_path)
    assert content_digest(item_bank_path) == original
    ok(cli("check", database=item_bank_path))


def journal_mode(bank: Path) -> str:
    connection = sqlite3.connect(f"file:{bank}?mode=ro", uri=True)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


def test_migrate_leaves_the_bank_sealed_for_an_image(item_bank_path: Path) -> None:
    # A bank a writable server used is in WAL mode, which the image's read-only item_service cannot open.
    with sqlite3.connect(item_bank_path) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
    assert journal_mode(item_bank_path) == "wal"
    ok(cli("migrate", database=item_bank_path))
    assert not item_bank_path.with_name(item_bank_path.name + "-wal").exists()
    assert journal_mode(item_bank_path) == "delete"


def test_import_leaves_the_bank_sealed_for_an_image(item_bank_path: Path, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    ok(cli("export", "--out", str(export), database=item_bank_path))
    ok(cli("import", str(export), database=item_bank_path))
    assert not item_bank_path.with_name(item_bank_path.name + "-wal").exists()
    assert journal_mode(item_bank_path) == "delete"


def test_backup_command(item_bank_path: Path) -> None:
    path = Path(ok(cli("backup", database=item_bank_path)).strip())
    assert path.parent == item_bank_path.parent / "backups"
    assert content_digest(path) == content_digest(item_bank_path)


def test_check_reports_drift_and_changes_nothing(item_bank_path: Path) -> None:
    assert "matches" in ok(cli("check", database=item_bank_path))
    with sqlite3.connect(item_bank_path) as connection:
        connection.execute("ALTER TABLE test_items ADD COLUMN stray TEXT")
    before = hashlib.sha256(item_bank_path.read_bytes()).hexdigest()
    done = cli("check", database=item_bank_path)
    assert done.returncode == 1 and "drift" in done.stdout and "stray" in done.stderr
    assert hashlib.sha256(item_bank_path.read_bytes()).hexdigest() == before


def test_migrate_creates_only_when_asked(tmp_path: Path) -> None:
    database = tmp_path / "item_bank.db"
    done = cli("migrate", database=database)
    assert done.returncode == 1 and "migrate --create" in done.stderr and not database.exists()
    ok(cli("migrate", "--create", database=database))
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA application_id").fetchone()[0] == ITEM_BANK_APPLICATION_ID
    assert not (tmp_path / "backups").exists()
    ok(cli("check", database=database))


def bodies_digest(path: Path) -> str:
    """A digest of what the items and passages say and of the audio's bytes, leaving out when they were written."""
    digest = hashlib.sha256()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for query in (
            "SELECT item_id, external_id, section, task_type, status, revision, passage_id, position, difficulty,"
            " demo, content, answer_key, irt, rubric, provenance FROM test_items ORDER BY item_id",
            "SELECT passage_id, external_id, section, task_type, title, text, audio_url, transcript, demo"
            " FROM passages ORDER BY passage_id",
            "SELECT sha256, content_type, byte_size, data FROM media ORDER BY sha256",
        ):
            digest.update(repr(connection.execute(query).fetchall()).encode())
    finally:
        connection.close()
    return digest.hexdigest()


def test_build_demo_bank_never_overwrites_silently_and_is_deterministic(item_bank_path: Path) -> None:
    before, bodies = content_digest(item_bank_path), bodies_digest(item_bank_path)
    done = cli("build-demo-bank", "--out", str(item_bank_path))
    assert done.returncode == 1 and "--force" in done.stderr
    assert content_digest(item_bank_path) == before
    summary = ok(cli("build-demo-bank", "--out", str(item_bank_path), "--force", "--seed", "2026"))
    assert "seed 2026" in summary and "active" in summary
    backups = list((item_bank_path.parent / "backups").glob("item_bank-*.db"))
    assert [content_digest(b) for b in backups] == [before]
    # Same seed, same bank, its audio byte for byte (synthesised anew in another process): only the times of
    # writing differ.
    assert bodies_digest(item_bank_path) == bodies
    # Another seed gives another bank: tests/item_service/test_demo_bank.py, on the generator, without another
    # 15 s of speech synthesis here.


def test_force_never_replaces_another_services_database(item_bank_path: Path) -> None:
    with sqlite3.connect(item_bank_path) as connection:
        connection.execute(f"PRAGMA application_id = {USER_DATA_APPLICATION_ID}")
    done = cli("build-demo-bank", "--out", str(item_bank_path), "--force")
    assert done.returncode == 1 and "user_data" in done.stderr
    assert not (item_bank_path.parent / "backups").exists()


def test_export_then_import_changes_nothing(item_bank_path: Path, tmp_path: Path) -> None:
    export = tmp_path / "bank.jsonl"
    assert "1070 items" in ok(cli("export", "--out", str(export), database=item_bank_path))
    dry = ok(cli("import", str(export), "--dry-run", database=item_bank_path))
    assert "dry run" in dry and "created 0, updated 0, left 1070 unchanged" in dry
    bank_tables = ("test_items", "passages", "item_revisions", "reviews")
    before = content_digest(item_bank_path, bank_tables)
    assert "left 1070 unchanged" in ok(cli("import", str(export), database=item_bank_path))
    assert content_digest(item_bank_path, bank_tables) == before
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"item": {"nope": 1}}\n')
    done = cli("import", str(broken), database=item_bank_path)
    assert done.returncode == 1 and "broken.jsonl:1" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [["frobnicate"], ["build-demo-bank", "--seed", "x"], ["export"], []])
def test_bad_arguments_give_usage_not_tracebacks(args: list[str]) -> None:
    done = cli(*args)
    assert done.returncode == 2 and "usage:" in done.stderr and "Traceback" not in done.stderr


def test_check_reports_a_damaged_bank(item_bank_path: Path) -> None:
    # Overwrite pages in the middle of the file, keeping the header (and so the owner mark) intact.
    with sqlite3.connect(item_bank_path) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    size = item_bank_path.stat().st_size
    with item_bank_path.open("r+b") as handle:
        handle.seek(page_size * max(2, size // page_size // 2))
        handle.write(b"\xff" * page_size * 4)
    done = cli("check", database=item_bank_path)
    assert done.returncode == 1 and "integrity" in done.stdout + done.stderr


def test_the_head_serve_checks_against_is_the_migrations_head() -> None:
    # `serve` knows the head without Alembic: a new migration must move storage.engine.SCHEMA_HEAD with it.
    assert head_revision() == SCHEMA_HEAD


def test_serve_refuses_a_bank_at_another_schema_revision(item_bank_path: Path) -> None:
    with sqlite3.connect(item_bank_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0004'")
    done = cli("serve", database=item_bank_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert f"schema revision 0004, the code needs {SCHEMA_HEAD}" in done.stderr
