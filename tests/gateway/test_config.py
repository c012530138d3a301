"""Gateway settings from the environment: defaults, parsing, and refusals with a message naming the variable."""

from __future__ import annotations

import pytest

from gateway.config import DEVELOPMENT_CORS_ORIGINS, load_settings
from toefl_core.config import ConfigError

PRODUCTION_KEY = "a-production-secret-of-at-least-32-characters"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GATEWAY_ADDR", "ITEM_SERVICE_ADDR", "SESSION_SERVICE_ADDR", "GATEWAY_CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "GATEWAY_MAX_BODY_BYTES",
        "GATEWAY_DEFAULT_TIMEOUT",
        "GATEWAY_MAX_TIMEOUT",
        "GATEWAY_READY_INTERVAL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TOEFL_TOKEN_KEY", raising=False)
    monkeypatch.setenv("TOEFL_ENV", "development")


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.item_service_addr == "127.0.0.1:50051"
    assert settings.session_service_addr == "127.0.0.1:50052"
    assert settings.cors_origins == DEVELOPMENT_CORS_ORIGINS
    assert settings.max_body_bytes == 1024 * 1024 and settings.default_timeout == 10.0
    assert settings.max_timeout == 60.0


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ADDR", "0.0.0.0:0")
    monkeypatch.setenv("SESSION_SERVICE_ADDR", "")
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "https://exam.example/, http://localhost:5173")
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("GATEWAY_DEFAULT_TIMEOUT", "2.5")
    monkeypatch.setenv("GATEWAY_MAX_TIMEOUT", "30")
    settings = load_settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 0)
    assert settings.session_service_addr == ""
    assert settings.cors_origins == ("https://exam.example", "http://localhost:5173")
    assert (settings.max_body_bytes, settings.default_timeout, settings.max_timeout) == (2048, 2.5, 30.0)


def test_production_allows_no_origin_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOEFL_ENV", "production")
    monkeypatch.setenv("TOEFL_TOKEN_KEY", PRODUCTION_KEY)
    assert load_settings().cors_origins == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_ADDR", "8080"),
        ("ITEM_SERVICE_ADDR", "localhost:port"),
        ("SESSION_SERVICE_ADDR", "host:99999"),
        ("GATEWAY_CORS_ORIGINS", "*"),
        ("GATEWAY_CORS_ORIGINS", "exam.example"),
        ("GATEWAY_MAX_BODY_BYTES", "0"),
        ("GATEWAY_DEFAULT_TIMEOUT", "-1"),
        ("GATEWAY_DEFAULT_TIMEOUT", "90"),
        ("GATEWAY_MAX_TIMEOUT", "inf"),
        ("GATEWAY_MAX_TIMEOUT", "5"),
        ("GATEWAY_READY_INTERVAL", "soon"),
    ],
)
def test_refusals_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()
