"""Settings refuse unsafe defaults outside development."""

from __future__ import annotations

import pytest

from toefl_core.config import DEV_TOKEN_KEY, ConfigError, env_bool, load_common_settings


def test_development_falls_back_to_the_dev_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOEFL_ENV", raising=False)
    monkeypatch.delenv("TOEFL_TOKEN_KEY", raising=False)
    settings = load_common_settings()
    assert settings.is_development and settings.token_key == DEV_TOKEN_KEY


@pytest.mark.parametrize("key", ["", DEV_TOKEN_KEY, "short"])
def test_production_refuses_missing_default_or_short_key(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("TOEFL_ENV", "production")
    monkeypatch.setenv("TOEFL_TOKEN_KEY", key)
    with pytest.raises(ConfigError, match="TOEFL_TOKEN_KEY"):
        load_common_settings()


def test_production_accepts_a_real_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOEFL_ENV", "production")
    monkeypatch.setenv("TOEFL_TOKEN_KEY", "p" * 48)
    assert load_common_settings().token_key == "p" * 48


def test_unknown_environment_and_bad_bool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOEFL_ENV", "staging")
    with pytest.raises(ConfigError, match="TOEFL_ENV"):
        load_common_settings()
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ConfigError, match="SOME_FLAG"):
        env_bool("SOME_FLAG", False)
