"""Fixtures of the fuzz tests: one real stack for the whole directory, its URL and an admin token."""

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
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="session")
def gateway_url(fuzz_stack: Stack) -> str:
    assert fuzz_stack.gateway is not None
    return fuzz_stack.gateway.url


@pytest.fixture(scope="session")
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {token(Role.ADMIN, 'usr-fuzz-admin', ttl=6 * 3600)}"}
