"""session_service killed 3 s before a module's deadline and back after it: the answer given in time is taken."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from launcher.stack import Stack
from tests.support.exam import CLIENT_TIMEOUT, Attempt, Student, call, open_students, put
from tests.support.tokens import TEST_TOKEN_KEY

# The Reading router module (900 s) lasts about 13.5 s at this scale.
TIME_SCALE = "0.015"
KILL_BEFORE_DEADLINE = 3.0
DOWN_FOR = 5.0
# Given back beyond the downtime (SESSION_OUTAGE_GRACE_SECONDS's default).
GRACE = 5.0


@pytest.fixture
def stack(demo_bank_template: Path, tmp_path: Path) -> Iterator[Stack]:
    bank = tmp_path / "item_bank.db"
    shutil.copyfile(demo_bank_template, bank)
    # The sweep runs often: without the time given back it would expire the module as soon as the service is up.
    env = {"SESSION_TIME_SCALE": TIME_SCALE, "SESSION_SWEEP_SECONDS": "0.2"}
    running = Stack(tmp_path, bank, TEST_TOKEN_KEY, session_env=env)
    try:
        yield running.start()
    finally:
        running.stop()


def outages(database: Path) -> list[tuple[int, int, int, int]]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT down_from_ms, up_ms, time_back_ms, modules FROM service_outages").fetchall()
    finally:
        conn.close()


async def module_of(http: aiohttp.ClientSession, base: str, student: Student) -> dict[str, object]:
    status, session = await call(http, "GET", f"{base}/api/sessions/{student.session_id}", student.token)
    assert status == 200, session
    module = session["currentModule"]
    assert isinstance(module, dict)
    return module


async def test_answer_refused_by_an_outage_is_taken_on_retry(stack: Stack) -> None:
    assert stack.session is not None and stack.gateway is not None
    (student,) = await open_students(stack, 1)
    item_id, answer = student.answers[0]
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        module = await module_of(http, stack.gateway.url, student)
        remaining = module["remainingSeconds"]
        assert isinstance(remaining, int) and remaining > KILL_BEFORE_DEADLINE + 2, module
        await asyncio.sleep(remaining - KILL_BEFORE_DEADLINE)

        stack.session.kill()
        down_from = time.monotonic()
        attempt = Attempt(student, item_id, answer, uuid.uuid4().hex)
        await put(http, stack.gateway.url, attempt)
        assert attempt.status == 503, attempt.reply
        # The deadline passes while the service is down.
        await asyncio.sleep(DOWN_FOR)
        restarting = time.monotonic()
        await asyncio.to_thread(stack.session.start)
        serving = time.monotonic()
        stack.gateway.terminate()
        await asyncio.to_thread(stack.start_gateway)
        downtime = time.monotonic() - down_from

        # The student's client sends the same answer again, with the same request id, until the service answers.
        retried_until = time.monotonic() + 30
        while True:
            await put(http, stack.gateway.url, attempt)
            if attempt.status not in (None, 502, 503) or time.monotonic() > retried_until:
                break
            await asyncio.sleep(0.2)
        assert attempt.status == 200, attempt.reply
        module = await module_of(http, stack.gateway.url, student)

    assert module["status"] == "MODULE_STATUS_OPEN", module
    # What was left before the outage, given back: the rest of the 3 s plus the grace, less the time since.
    remaining = module["remainingSeconds"]
    assert isinstance(remaining, int) and 0 < remaining <= KILL_BEFORE_DEADLINE + GRACE, module
    ((down_from_ms, up_ms, time_back_ms, modules),) = outages(stack.user_db)
    assert modules == 1
    # The outage the service saw runs from its last heartbeat (a beat or so before the kill) to its start, which
    # falls between the test's call to start it and its serving (seconds apart on a loaded machine).
    assert restarting - down_from - 0.1 < (up_ms - down_from_ms) / 1000 < serving - down_from + 2.0
    assert time_back_ms == up_ms - down_from_ms + GRACE * 1000
    print(
        f"outage: down {downtime:.2f} s as the test saw it, {(up_ms - down_from_ms) / 1000:.2f} s as the service"
        f" did; {time_back_ms / 1000:.2f} s given back; {remaining} s left after the retry was taken"
    )
