"""The item bank's storage: the only package of item_service that imports SQLAlchemy, Alembic or sqlite3."""

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
from item_service.storage.schema import (
    head_revision,
    integrity_problems,
    schema_drift,
    upgrade_to_head,
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
    "head_revision",
    "integrity_problems",
    "read_owner",
    "schema_drift",
    "schema_revision",
    "seal_for_shipping",
    "sqlite_path",
    "upgrade_to_head",
]
