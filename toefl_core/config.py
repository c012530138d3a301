"""Reading typed settings from the environment, refusing unsafe defaults outside development."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEVELOPMENT = "development"
PRODUCTION = "production"
# Only ever accepted in development: a fresh clone must run with no secrets set up.
DEV_TOKEN_KEY = "dev-only-token-key-change-me-0123456789abcdef"
TOKEN_KEY_MIN_LENGTH = 32


class ConfigError(Exception):
    """A setting is missing or unsafe; the message says which and how to fix it."""


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class CommonSettings:
    """What every service reads: the deployment environment and the token key."""

    environment: str
    token_key: str

    @property
    def is_development(self) -> bool:
        return self.environment == DEVELOPMENT


def load_common_settings() -> CommonSettings:
    environment = env_str("TOEFL_ENV", DEVELOPMENT).lower()
    if environment not in {DEVELOPMENT, PRODUCTION}:
        raise ConfigError(f"TOEFL_ENV={environment!r}: use {DEVELOPMENT!r} or {PRODUCTION!r}")
    token_key = os.environ.get("TOEFL_TOKEN_KEY", "").strip()
    if environment != DEVELOPMENT:
        if not token_key or token_key == DEV_TOKEN_KEY:
            raise ConfigError("TOEFL_TOKEN_KEY must be set to a secret of its own outside development")
        if len(token_key) < TOKEN_KEY_MIN_LENGTH:
            raise ConfigError(f"TOEFL_TOKEN_KEY must be at least {TOKEN_KEY_MIN_LENGTH} characters long")
    return CommonSettings(environment=environment, token_key=token_key or DEV_TOKEN_KEY)
