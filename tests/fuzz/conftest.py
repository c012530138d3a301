"""Fixtures of the fuzz tests: one real stack for the whole directory, its URL, an admin and a student token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.stack import Stack
from tests.faults.conftest import new_stack
from tests.support.tokens import token
from toefl_core.auth import Role


@pytest.fixture(scope="session")
def fuzz_stack(demo_bank_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = new_stack(tmp_path_factory.mktemp("fuzz-stack"), demo_bank_template)
    running.gateway_log_level = "WARNING"
    # schemathesis's stateful phase starts many sessions with one student token; the daily limit (tested on its
    # own in tests/session_service) would turn them into 429s after the tenth.
    running.session_env = {**running.session_env, "SESSION_DAILY_SESSION_LIMIT": "1000000"}
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="session")
def gateway_url(fuzz_stack: Stack) -> str:
    assert fuzz_stack.gateway is not None
    return fuzz_stack.gateway.url


@pytest.fixture(scope="session")
def admin_token() -> str:
    return token(Role.ADMIN, "usr-fuzz-admin", ttl=6 * 3600)


@pytest.fixture(scope="session")
def student_token() -> str:
    return token(Role.STUDENT, "usr-fuzz-student", ttl=6 * 3600)
