"""Online backups of the SQLite bank with SQLite's backup API, into a timestamped file beside the bank."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

BACKUP_DIR_NAME = "backups"


def backup_path_for(database: Path, *, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return database.parent / BACKUP_DIR_NAME / f"{database.stem}-{stamp}.db"


def backup_database(database: Path, *, target: Path | None = None) -> Path:
    """Copy a live database page by page (readers and writers may go on meanwhile); returns the copy's path."""
    destination = target or backup_path_for(database)
    destination.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{database.resolve()}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(destination)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    log.info("backed up %s to %s", database, destination)
    return destination
