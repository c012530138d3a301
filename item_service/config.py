"""item_service settings, read once from the environment into one typed object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from toefl_core.config import CommonSettings, env_bool, env_str, load_common_settings
from toefl_core.ownership import refuse_shared_database

SERVICE_DIR = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = f"sqlite:///{SERVICE_DIR / 'item_bank.db'}"
DEFAULT_ADDRESS = "127.0.0.1:50051"


@dataclass(frozen=True)
class Settings:
    # Only DATABASE_URL: the item service must never learn where the student data lives.
    database_url: str
    address: str
    read_only: bool
    common: CommonSettings

    @property
    def token_key(self) -> str:
        return self.common.token_key


def load_settings() -> Settings:
    """Raises ConfigError for an unsafe setting, OwnershipError when both database URLs name one database."""
    refuse_shared_database(os.environ)
    return Settings(
        database_url=env_str("DATABASE_URL", DEFAULT_DATABASE_URL),
        address=env_str("ITEM_SERVICE_ADDR", DEFAULT_ADDRESS),
        read_only=env_bool("ITEM_BANK_READ_ONLY", False),
        common=load_common_settings(),
    )
