"""The item bank's storage: item_service's only package importing SQLAlchemy, Alembic (in .schema) or sqlite3."""

from item_service.storage.backup import backup_database
from item_service.storage.engine import (
    StorageError,
    check_bank,
    create_bank_engine,
    read_owner,
    seal_for_shipping,
)
from item_service.storage.media_check import MediaReport, check_media_blobs
from item_service.storage.repository import (
    READ_ONLY_MESSAGE,
    AuditFilter,
    BankReader,
    BankWriter,
    ItemBank,
    ItemFilter,
)
from toefl_core.storage import schema_revision, sqlite_path

__all__ = [
    "READ_ONLY_MESSAGE",
    "AuditFilter",
    "BankReader",
    "BankWriter",
    "ItemBank",
    "ItemFilter",
    "MediaReport",
    "StorageError",
    "backup_database",
    "check_bank",
    "check_media_blobs",
    "create_bank_engine",
    "read_owner",
    "schema_revision",
    "seal_for_shipping",
    "sqlite_path",
]
