"""Owner marks of the two databases, retired file names and safe fingerprints (no database code here)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

# SQLite `PRAGMA application_id` values: ASCII "TOIB" and "TOUD". For PostgreSQL the same names go in an
# owner row written by the first migration.
ITEM_BANK_APPLICATION_ID = 0x544F4942
USER_DATA_APPLICATION_ID = 0x544F5544
ITEM_BANK_OWNER = "item_bank"
USER_DATA_OWNER = "user_data"
OWNER_BY_APPLICATION_ID = {ITEM_BANK_APPLICATION_ID: ITEM_BANK_OWNER, USER_DATA_APPLICATION_ID: USER_DATA_OWNER}
ITEM_BANK_FILE = "item_bank.db"
USER_DATA_FILE = "user_data.db"
# Names from before the split into two databases; opening one could mix student data with the item bank.
RETIRED_FILE_NAMES = frozenset({"toefl_2026.db", "toefl_item_bank.db", "toefl_user_data.db"})


class OwnershipError(Exception):
    """A service was pointed at a database that is not its own; the message says what to use instead."""


@dataclass(frozen=True)
class DatabaseIdentity:
    """What can be said about a database URL without revealing a secret."""

    backend: str
    database_name: str
    fingerprint: str


def _backend(scheme: str) -> str:
    return scheme.split("+", 1)[0].lower()


def identify(url: str) -> DatabaseIdentity:
    """Backend, bare database name and a hashed fingerprint of host, port and database (never the password)."""
    parts = urlsplit(url)
    backend = _backend(parts.scheme)
    if backend == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute.db; the fingerprint uses the resolved path.
        raw_path = unquote(url.split(":///", 1)[1]) if ":///" in url else ""
        resolved = str(Path(raw_path).resolve()) if raw_path and raw_path != ":memory:" else raw_path
        name = PurePosixPath(raw_path).name if raw_path else ":memory:"
        key = f"sqlite:{resolved}"
    else:
        name = parts.path.lstrip("/")
        key = f"{backend}:{(parts.hostname or '').lower()}:{parts.port or ''}:{name}"
    return DatabaseIdentity(
        backend=backend, database_name=name, fingerprint=hashlib.sha256(key.encode()).hexdigest()[:16]
    )


def refuse_retired_name(url: str, *, use_instead: str) -> None:
    name = identify(url).database_name
    if name in RETIRED_FILE_NAMES:
        raise OwnershipError(f"refusing the retired database name {name!r}: use {use_instead!r} instead")


def check_owner(found_owner: str | None, *, expected: str, what: str) -> None:
    """Refuse a database whose owner mark is missing or belongs to the other service."""
    if found_owner == expected:
        return
    if found_owner is None:
        raise OwnershipError(f"{what} carries no owner mark of {expected!r}; refusing to open it")
    raise OwnershipError(f"{what} belongs to {found_owner!r}, not {expected!r}; refusing to open it")


def refuse_shared_database(environ: Mapping[str, str]) -> None:
    """Refuse to start when DATABASE_URL and USER_DATABASE_URL both name the same database.

    Each service reads only its own variable; this catches an environment wired so that the item bank and the
    student data would land in one database if either service were ever pointed at the other variable.
    """
    item_url = environ.get("DATABASE_URL", "").strip()
    user_url = environ.get("USER_DATABASE_URL", "").strip()
    if item_url and user_url and identify(item_url).fingerprint == identify(user_url).fingerprint:
        raise OwnershipError(
            "DATABASE_URL and USER_DATABASE_URL name the same database; the item bank (item_bank.db) and the "
            "student data (user_data.db) must live in separate databases"
        )
