"""Settings of the session service, read from the environment once at start-up."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from session_service.accounts import FAST_PARAMETERS, OWASP_MINIMUM_WORK, OWASP_PARAMETERS, HashParameters
from session_service.blueprint import CURRENT_VERSION, load_blueprint
from toefl_core.auth import DEFAULT_TTL_SECONDS
from toefl_core.config import CommonSettings, ConfigError, env_bool, env_float, env_str, load_common_settings
from toefl_core.ownership import refuse_shared_database
from toefl_core.server import MAX_MESSAGE_BYTES

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT / "data"
DEFAULT_ADDRESS = "127.0.0.1:50052"
DEFAULT_ITEM_SERVICE_ADDR = "127.0.0.1:50051"
DEMO_CREDENTIALS_FILE = "demo-credentials.json"
# Salt of the blind double-rating draw (toefl_core.rating.needs_second_rating); a new salt draws a new selection.
SECOND_RATING_SALT = "toefl2026-double-rating-v1"
# The share of rated responses also rated by a second, blind rater, unless SESSION_SECOND_RATING_SHARE says else.
DEFAULT_SECOND_RATING_SHARE = 0.2
# Entries of a List RPC's page when the client names no size, and the most it may ask for.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Settings:
    common: CommonSettings
    database_url: str
    address: str
    item_service_addr: str
    # Multiplies every blueprint time limit; only a test or a demo shortens an exam (development only).
    time_scale: float
    # How often the background sweep closes modules whose deadline has passed.
    sweep_seconds: float
    # How long a call that needs item_service keeps retrying before answering UNAVAILABLE.
    item_retry_seconds: float
    # Cheap argon2 parameters, so that tests and benchmarks can create hundreds of accounts (development only).
    fast_password_hashing: bool
    # The share of rated responses also rated by a second, blind rater.
    second_rating_share: float
    # Sessions a student may have started per UTC day (admins excepted): repeating one-answer sessions
    # would otherwise harvest the item keys from the scores.
    daily_session_limit: int = 10
    # How often each process writes its heartbeat; a start finds the service's downtime from the last one.
    heartbeat_seconds: float = 1.0
    # Given back beyond an outage's length to the modules open during it: the time a student's client needs to
    # reach the service again once it is back.
    outage_grace_seconds: float = 5.0
    # argon2id's parameters; a stored hash with others is re-hashed at its owner's next sign-in.
    password_parameters: HashParameters = OWASP_PARAMETERS
    # Threads that hash passwords (default: one per core), apart from the ones that read the database.
    hash_workers: int = 1
    # The longest a sign-in waits for a hashing thread; beyond it, SIGN_IN_BUSY at once with a Retry-After.
    sign_in_max_wait_seconds: float = 2.0
    # An access token's life; a client renews it with its refresh token, without the password.
    access_token_ttl_seconds: int = DEFAULT_TTL_SECONDS
    # How long one sign-in lasts at most, refreshes included: a school day, beyond a whole sitting.
    refresh_token_ttl_seconds: int = 12 * 3600
    # Failed sign-ins from one address within the window before it is slowed (held back, doubling, up to 60 s).
    sign_in_address_failures: int = 100
    # Advances (routing, assembly, section scoring, a whole module's reply) in progress at once; the rest wait
    # their turn, so the answers of students still in a module pass between them instead of queueing behind a
    # whole room's module change on the event loop.
    concurrent_advances: int = 4
    # A spoken answer's audio at most (a 45-second WAV, 16-bit mono at 48 kHz, is 4.3 MB; Opus is a tenth of it).
    recording_max_bytes: int = 8 * 1024 * 1024
    # All recordings of one test together, re-recordings included (a full test has 11 speaking items).
    recordings_max_total_bytes: int = 64 * 1024 * 1024
    # Whether a student may start a test outside a scheduled sitting (practice); a school that runs tests only in
    # sittings turns it off.
    practice_outside_sittings: bool = True
    # How often a watched sitting's room is looked at (one read per sitting, shared by its proctors).
    watch_seconds: float = 1.0
    # How long after a module opened the modules that may follow it are assembled ahead (at the latest: a quarter
    # of its items answered bring them forward); None: halfway through its time, past a sitting's rush of sign-ins
    # and starts, well before its end.
    prepare_after_seconds: float | None = None
    # The blueprint new sessions follow (a session keeps the one it started with); another than the current one
    # only in development: the browser tests' short form of the whole test.
    blueprint_version: str = CURRENT_VERSION

    @property
    def data_dir(self) -> Path:
        """Where files that belong with the user database go (the demo credentials)."""
        if self.database_url.startswith("sqlite") and ":///" in self.database_url:
            raw = self.database_url.split(":///", 1)[1]
            if raw and raw != ":memory:":
                return Path(raw).resolve().parent
        return DEFAULT_DATA_DIR


def _whole(name: str, default: int, minimum: int) -> int:
    value = env_float(name, float(default))
    if value < minimum or not value.is_integer():
        raise ConfigError(f"{name}={value:g} must be a whole number of at least {minimum}")
    return int(value)


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _password_parameters(fast: bool, development: bool) -> HashParameters:
    default = FAST_PARAMETERS if fast else OWASP_PARAMETERS
    parameters = HashParameters(
        time_cost=_whole("SESSION_PASSWORD_TIME_COST", default.time_cost, 1),
        memory_kib=_whole("SESSION_PASSWORD_MEMORY_KIB", default.memory_kib, 8),
        parallelism=_whole("SESSION_PASSWORD_PARALLELISM", default.parallelism, 1),
    )
    if not development and parameters.memory_kib * parameters.time_cost < OWASP_MINIMUM_WORK:
        raise ConfigError(
            f"SESSION_PASSWORD_MEMORY_KIB x SESSION_PASSWORD_TIME_COST = "
            f"{parameters.memory_kib * parameters.time_cost} is below OWASP's minimum ({OWASP_MINIMUM_WORK}, "
            "e.g. 19456 KiB x 2) and is refused outside development"
        )
    return parameters


def default_database_url() -> str:
    return f"sqlite:///{DEFAULT_DATA_DIR / 'user_data.db'}"


def load_settings() -> Settings:
    common = load_common_settings()
    # Only USER_DATABASE_URL is ever opened. DATABASE_URL (the item bank's) is looked at for one thing: to refuse
    # an environment wired so that both would land in one database.
    refuse_shared_database(os.environ)
    database_url = env_str("USER_DATABASE_URL", default_database_url())
    time_scale = env_float("SESSION_TIME_SCALE", 1.0)
    if time_scale <= 0:
        raise ConfigError(f"SESSION_TIME_SCALE={time_scale} must be positive")
    if time_scale != 1.0 and not common.is_development:
        raise ConfigError("SESSION_TIME_SCALE changes exam time limits and is refused outside development")
    sweep_seconds = env_float("SESSION_SWEEP_SECONDS", 5.0)
    if sweep_seconds <= 0:
        raise ConfigError(f"SESSION_SWEEP_SECONDS={sweep_seconds} must be positive")
    item_retry_seconds = env_float("SESSION_ITEM_RETRY_SECONDS", 8.0)
    if item_retry_seconds < 0:
        raise ConfigError(f"SESSION_ITEM_RETRY_SECONDS={item_retry_seconds} must not be negative")
    fast_password_hashing = env_bool("SESSION_FAST_PASSWORD_HASHING", False)
    if fast_password_hashing and not common.is_development:
        raise ConfigError(
            "SESSION_FAST_PASSWORD_HASHING weakens password hashes and is refused outside development"
        )
    second_rating_share = env_float("SESSION_SECOND_RATING_SHARE", DEFAULT_SECOND_RATING_SHARE)
    if not 0.0 <= second_rating_share <= 1.0:
        raise ConfigError(f"SESSION_SECOND_RATING_SHARE={second_rating_share} must lie in [0, 1]")
    daily_limit = env_float("SESSION_DAILY_SESSION_LIMIT", 10.0)
    if daily_limit < 1 or not daily_limit.is_integer():
        raise ConfigError(f"SESSION_DAILY_SESSION_LIMIT={daily_limit:g} must be a whole number of at least 1")
    heartbeat_seconds = env_float("SESSION_HEARTBEAT_SECONDS", 1.0)
    if heartbeat_seconds <= 0:
        raise ConfigError(f"SESSION_HEARTBEAT_SECONDS={heartbeat_seconds} must be positive")
    outage_grace_seconds = env_float("SESSION_OUTAGE_GRACE_SECONDS", 5.0)
    if outage_grace_seconds < 0:
        raise ConfigError(f"SESSION_OUTAGE_GRACE_SECONDS={outage_grace_seconds} must not be negative")
    max_wait = env_float("SESSION_SIGN_IN_MAX_WAIT_SECONDS", 2.0)
    if max_wait < 0:
        raise ConfigError(f"SESSION_SIGN_IN_MAX_WAIT_SECONDS={max_wait} must not be negative")
    access_ttl = _whole("SESSION_ACCESS_TOKEN_TTL_SECONDS", DEFAULT_TTL_SECONDS, 1)
    refresh_ttl = _whole("SESSION_REFRESH_TOKEN_TTL_SECONDS", 12 * 3600, 1)
    if refresh_ttl < access_ttl:
        raise ConfigError(
            f"SESSION_REFRESH_TOKEN_TTL_SECONDS={refresh_ttl} is shorter than SESSION_ACCESS_TOKEN_TTL_SECONDS"
        )
    blueprint_version = env_str("SESSION_BLUEPRINT", CURRENT_VERSION)
    if blueprint_version != CURRENT_VERSION and not common.is_development:
        raise ConfigError(
            f"SESSION_BLUEPRINT={blueprint_version} is not the current blueprint ({CURRENT_VERSION}) and is "
            "refused outside development"
        )
    # A missing or malformed blueprint stops the start (BlueprintError), before any session follows it.
    load_blueprint(blueprint_version)
    recording_max = _whole("SESSION_RECORDING_MAX_BYTES", 8 * 1024 * 1024, 1024)
    # A recording arrives in one gRPC message, with its request's few other fields.
    if recording_max > MAX_MESSAGE_BYTES - 64 * 1024:
        raise ConfigError(
            f"SESSION_RECORDING_MAX_BYTES={recording_max} does not fit a gRPC message of {MAX_MESSAGE_BYTES} bytes"
        )
    watch_seconds = env_float("SESSION_WATCH_INTERVAL_SECONDS", 1.0)
    if watch_seconds <= 0:
        raise ConfigError(f"SESSION_WATCH_INTERVAL_SECONDS={watch_seconds} must be positive")
    # Unset: halfway through each router's time (None).
    prepare_after: float | None = env_float("SESSION_PREPARE_AFTER_SECONDS", math.nan)
    if prepare_after is not None and math.isnan(prepare_after):
        prepare_after = None
    elif prepare_after is not None and prepare_after < 0:
        raise ConfigError(f"SESSION_PREPARE_AFTER_SECONDS={prepare_after} must not be negative")
    return Settings(
        common=common,
        database_url=database_url,
        address=env_str("SESSION_SERVICE_ADDR", DEFAULT_ADDRESS),
        item_service_addr=env_str("ITEM_SERVICE_ADDR", DEFAULT_ITEM_SERVICE_ADDR),
        time_scale=time_scale,
        sweep_seconds=sweep_seconds,
        item_retry_seconds=item_retry_seconds,
        fast_password_hashing=fast_password_hashing,
        second_rating_share=second_rating_share,
        daily_session_limit=int(daily_limit),
        heartbeat_seconds=heartbeat_seconds,
        outage_grace_seconds=outage_grace_seconds,
        password_parameters=_password_parameters(fast_password_hashing, common.is_development),
        hash_workers=_whole("SESSION_HASH_WORKERS", cores(), 1),
        sign_in_max_wait_seconds=max_wait,
        access_token_ttl_seconds=access_ttl,
        refresh_token_ttl_seconds=refresh_ttl,
        sign_in_address_failures=_whole("SESSION_SIGN_IN_ADDRESS_FAILURES", 100, 1),
        concurrent_advances=_whole("SESSION_CONCURRENT_ADVANCES", 2 * cores(), 1),
        recording_max_bytes=recording_max,
        recordings_max_total_bytes=_whole("SESSION_RECORDINGS_MAX_TOTAL_BYTES", 64 * 1024 * 1024, 1024),
        practice_outside_sittings=env_bool("SESSION_PRACTICE_OUTSIDE_SITTINGS", True),
        watch_seconds=watch_seconds,
        prepare_after_seconds=prepare_after,
        blueprint_version=blueprint_version,
    )


__all__ = ["ConfigError", "Settings", "default_database_url", "load_settings"]
