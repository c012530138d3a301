"""user_data.db locked by another process: answers wait, or get a clear 503; nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from launcher.stack import Stack
from tests.faults.exactly_once import check_exactly_once
from tests.support.exam import UNTIL_STOPPED, Attempt, Student, answer_stream, put

STUDENTS = 30
# Longer than session_service's SQLite busy timeout (30 s): the writer gives up while the lock is held.
LONG_LOCK_SECONDS = 35.0


@contextmanager
def exclusive_lock(database: Path) -> Iterator[None]:
    """Another process's write lock on the user database (BEGIN EXCLUSIVE), held until the block ends."""
    conn = sqlite3.connect(database, isolation_level=None, timeout=30, check_same_thread=False)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def test_short_lock_delays_answers_and_loses_none(stack: Stack, students: list[Student]) -> None:
    assert stack.gateway is not None
    base = stack.gateway.url
    stop = asyncio.Event()
    stream = asyncio.create_task(answer_stream(lambda: base, students, UNTIL_STOPPED, stop))
    await asyncio.sleep(0.3)
    lock = exclusive_lock(stack.user_db)
    await asyncio.to_thread(lock.__enter__)
    await asyncio.sleep(2.0)
    await asyncio.to_thread(lock.__exit__, None, None, None)
    await asyncio.sleep(0.5)
    stop.set()
    attempts = await stream
    assert [(a.status, a.reply) for a in attempts if not a.acknowledged] == []
    counts = check_exactly_once(attempts, stack.user_db)
    print(f"short lock: {counts}")


@pytest.mark.slow
async def test_lock_beyond_busy_timeout_is_503_then_recovers(stack: Stack, students: list[Student]) -> None:
    assert stack.gateway is not None
    base = stack.gateway.url
    student = students[0]
    item_id, answer = student.answers[0]
    blocked = Attempt(student, item_id, answer, uuid.uuid4().hex)
    # The gateway waits as long as the service does, so the service's own answer reaches the client.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as http:
        with exclusive_lock(stack.user_db):
            await put(http, base, blocked, headers={"Grpc-Timeout": "80S"})
        assert blocked.status in (503, 429), (blocked.status, blocked.reply)
        assert blocked.reply["code"] in (14, 8), blocked.reply
        assert "database" in blocked.reply["message"].lower(), blocked.reply
        again = Attempt(student, item_id, answer, blocked.request_id)
        await put(http, base, again)
    assert again.acknowledged, again.reply
    assert again.reply["replayed"] is False
    print(f"long lock: {check_exactly_once([again], stack.user_db)}")
