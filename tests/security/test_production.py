"""Production mode: every service refuses to start without a token key of its own (real processes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from launcher.gateway import GatewayProcess
from launcher.procs import clean_env, service_process
from tests.security.startup import assert_refused, start_expecting_refusal
from tests.session_service.conftest import require_temporary_url
from toefl_core.config import DEV_TOKEN_KEY

SERVICES = ("item_service", "session_service", "gateway")
PRODUCTION_KEY = "a-production-secret-of-its-own-0123456789"


def production_env(service: str, workdir: Path, bank: Path) -> dict[str, str]:
    """Everything else a service needs in production, so that only the token key can make it refuse."""
    env = clean_env(TOEFL_ENV="production", TOEFL_TOKEN_KEY=PRODUCTION_KEY)
    if service == "item_service":
        env.update(DATABASE_URL=f"sqlite:///{bank}", ITEM_SERVICE_ADDR="127.0.0.1:0", ITEM_BANK_READ_ONLY="true")
    elif service == "session_service":
        url = f"sqlite:///{workdir / 'user_data.db'}"
        require_temporary_url(url)
        env.update(USER_DATABASE_URL=url, SESSION_SERVICE_ADDR="127.0.0.1:0", ITEM_SERVICE_ADDR="127.0.0.1:1")
    else:
        env.update(GATEWAY_ADDR="127.0.0.1:0", ITEM_SERVICE_ADDR="127.0.0.1:1", SESSION_SERVICE_ADDR="127.0.0.1:1")
    return env


@pytest.fixture
def bank(demo_bank_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "item_bank.db"
    shutil.copyfile(demo_bank_template, path)
    return path


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("key", "words"),
    [
        (None, ("TOEFL_TOKEN_KEY", "outside development")),
        (DEV_TOKEN_KEY, ("TOEFL_TOKEN_KEY", "outside development")),
        ("too-short-a-secret", ("TOEFL_TOKEN_KEY", "at least 32 characters")),
    ],
    ids=["missing", "the development key", "too short"],
)
def test_refuses_to_start_without_a_key_of_its_own(
    service: str, key: str | None, words: tuple[str, ...], bank: Path, tmp_path: Path
) -> None:
    env = production_env(service, tmp_path, bank)
    if key is None:
        del env["TOEFL_TOKEN_KEY"]
    else:
        env["TOEFL_TOKEN_KEY"] = key
    refusal = start_expecting_refusal(service, workdir=tmp_path / "run", env=env)
    assert_refused(refusal, *words)
    assert DEV_TOKEN_KEY not in refusal.output
    assert not (tmp_path / "user_data.db").exists(), "nothing is created before the settings are checked"


@pytest.mark.parametrize("service", SERVICES)
def test_starts_in_production_with_a_key_of_its_own(service: str, bank: Path, tmp_path: Path) -> None:
    """The control: the same environment with a proper key serves, so the refusals above are about the key."""
    env = production_env(service, tmp_path, bank)
    if service == "gateway":
        proc = GatewayProcess(
            workdir=tmp_path / "run",
            item_address="127.0.0.1:1",
            session_address="127.0.0.1:1",
            token_key=PRODUCTION_KEY,
            env={"TOEFL_ENV": "production"},
        ).start()
        try:
            assert proc.request("GET", "/healthz") == (200, {"status": "alive"})
            assert PRODUCTION_KEY not in proc.log_text()
        finally:
            proc.terminate()
        return
    running = service_process(service, workdir=tmp_path / "run", env=env).start()
    try:
        assert PRODUCTION_KEY not in running.log_text()
    finally:
        running.terminate()
