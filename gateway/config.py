"""The gateway's settings, one typed object read from the environment."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from gateway.forwarding import Network, parse_trusted_proxies
from toefl_core.config import ConfigError, env_float, env_str, load_common_settings

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# A google.api.HttpBody request body (a spoken answer's audio) is bytes, not JSON: room for a 45-second WAV.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# What `make web` builds (web/dist in the checkout); GATEWAY_WEB_DIR names another folder, or empty for none.
DEFAULT_WEB_DIR = Path(__file__).resolve().parents[1] / "web" / "dist"
DEFAULT_TIMEOUT_SECONDS = 10.0
# A client's Grpc-Timeout above this is cut down to it: no call holds a backend longer, and a huge value (gRPC
# allows up to 99999999 hours) cannot overflow the deadline into an instant DEADLINE_EXCEEDED.
DEFAULT_MAX_TIMEOUT_SECONDS = 60.0
DEFAULT_READY_INTERVAL_SECONDS = 2.0
# A frontend dev server on its usual ports; production names its origins explicitly.
DEVELOPMENT_CORS_ORIGINS = ("http://localhost:3000", "http://localhost:5173")


def split_address(name: str, address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{name}={address!r} is not host:port (port 0 picks a free port)")
    return host, int(port)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"{name}={raw!r} is not a positive integer")
    return int(raw)


def _positive(name: str, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive finite number, not {value}")
    return value


def _cors_origins(development: bool) -> tuple[str, ...]:
    raw = os.environ.get("GATEWAY_CORS_ORIGINS")
    if raw is None:
        return DEVELOPMENT_CORS_ORIGINS if development else ()
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    for origin in origins:
        if origin == "*" or not origin.startswith(("http://", "https://")):
            raise ConfigError(
                f"GATEWAY_CORS_ORIGINS: {origin!r} is not an origin; list each as scheme://host[:port], no '*'"
            )
    return origins


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    item_service_addr: str
    # Empty when the session service is not configured: its routes answer 503 and /readyz says so.
    session_service_addr: str
    cors_origins: tuple[str, ...]
    max_body_bytes: int
    default_timeout: float
    max_timeout: float
    ready_interval: float
    token_key: str
    environment: str
    # The built browser client served at / (None: not served; the API works without it).
    web_dir: Path | None = None
    # The body limit of the routes whose request body is a google.api.HttpBody (raw bytes of any content type).
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # Reverse proxies in front of the gateway whose X-Forwarded-For is believed (none by default: the peer is the
    # client); the client address they report is what sign-in throttling counts by.
    trusted_proxies: tuple[Network, ...] = ()


def load_settings() -> GatewaySettings:
    common = load_common_settings()
    host, port = split_address("GATEWAY_ADDR", env_str("GATEWAY_ADDR", "127.0.0.1:8080"))
    item = env_str("ITEM_SERVICE_ADDR", "127.0.0.1:50051")
    split_address("ITEM_SERVICE_ADDR", item)
    session = os.environ.get("SESSION_SERVICE_ADDR", "127.0.0.1:50052").strip()
    if session:
        split_address("SESSION_SERVICE_ADDR", session)
    default_timeout = _positive(
        "GATEWAY_DEFAULT_TIMEOUT", env_float("GATEWAY_DEFAULT_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)
    )
    max_timeout = _positive("GATEWAY_MAX_TIMEOUT", env_float("GATEWAY_MAX_TIMEOUT", DEFAULT_MAX_TIMEOUT_SECONDS))
    if default_timeout > max_timeout:
        raise ConfigError(f"GATEWAY_DEFAULT_TIMEOUT={default_timeout} exceeds GATEWAY_MAX_TIMEOUT={max_timeout}")
    web_dir = env_str("GATEWAY_WEB_DIR", str(DEFAULT_WEB_DIR)).strip()
    return GatewaySettings(
        web_dir=Path(web_dir) if web_dir else None,
        host=host,
        port=port,
        item_service_addr=item,
        session_service_addr=session,
        cors_origins=_cors_origins(common.is_development),
        max_body_bytes=_env_int("GATEWAY_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        max_upload_bytes=_env_int("GATEWAY_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
        default_timeout=default_timeout,
        max_timeout=max_timeout,
        ready_interval=_positive(
            "GATEWAY_READY_INTERVAL", env_float("GATEWAY_READY_INTERVAL", DEFAULT_READY_INTERVAL_SECONDS)
        ),
        token_key=common.token_key,
        environment=common.environment,
        trusted_proxies=parse_trusted_proxies(os.environ.get("GATEWAY_TRUSTED_PROXIES", "")),
    )
