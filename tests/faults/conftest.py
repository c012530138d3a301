"""Fixtures of the fault tests: the whole stack as child processes, and students with an open Reading module."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.stack import Stack
from tests.support.exam import Student, open_students
from tests.support.tokens import TEST_TOKEN_KEY

# session_service gives up on item_service after this long, so an outage test answers 503 quickly.
ITEM_RETRY_SECONDS = "1.5"


def new_stack(workdir: Path, demo_bank_template: Path) -> Stack:
    workdir.mkdir(parents=True, exist_ok=True)
    bank = workdir / "item_bank.db"
    shutil.copyfile(demo_bank_template, bank)
    return Stack(
        workdir,
        bank,
        TEST_TOKEN_KEY,
        session_env={"SESSION_ITEM_RETRY_SECONDS": ITEM_RETRY_SECONDS},
        gateway_log_level="INFO",
    )


@pytest.fixture(scope="module")
def stack(demo_bank_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack per test module; the tests kill and restart its processes, the databases stay."""
    running = new_stack(tmp_path_factory.mktemp("stack"), demo_bank_template)
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def students(stack: Stack, request: pytest.FixtureRequest) -> list[Student]:
    count = int(getattr(request.module, "STUDENTS", 50))
    return asyncio.run(open_students(stack, count))
