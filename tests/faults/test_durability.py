"""SIGKILL session_service while 200 students answer through the gateway: every acknowledged answer stays, once."""

from __future__ import annotations

import asyncio
import random

import pytest

from bench.common import Stack
from tests.faults.exam import Student, answer_stream, check_exactly_once, retry, stored

STUDENTS = 200
# What a client may see when the service dies under its request: no answer, or the gateway's 502/503.
CRASH_STATUSES = {None, 502, 503}
QUICK = [(n, 6, random.Random(n).uniform(0.3, 1.2)) for n in range(5)]
SLOW = [(n, 25, random.Random(100 + n).uniform(0.3, 8.0)) for n in range(10)]


async def kill_round(stack: Stack, students: list[Student], per_student: int, kill_after: float) -> dict[str, int]:
    assert stack.session is not None and stack.gateway is not None
    base = stack.gateway.url
    stop = asyncio.Event()
    stream = asyncio.create_task(answer_stream(lambda: base, students, per_student, stop))
    await asyncio.sleep(kill_after)
    stack.session.kill()
    stop.set()
    attempts = await stream
    await asyncio.to_thread(stack.restart_session)

    before = stored(stack.user_db)
    counts = check_exactly_once(attempts, stack.user_db)
    unacknowledged = [a for a in attempts if not a.acknowledged]
    assert counts["acknowledged"] > 0 and unacknowledged, "the kill must land while answers are in flight"
    assert {a.status for a in unacknowledged} <= CRASH_STATUSES, {a.status for a in unacknowledged}
    committed_unacknowledged = sum(a.request_id in before for a in unacknowledged)

    # Clients that saw no acknowledgement send the same request again: what the dead process had committed is
    # replayed, not written again; the rest is saved now.
    await retry(stack.gateway.url, unacknowledged)
    assert [a.reply for a in unacknowledged if not a.acknowledged] == []
    misreported = [a.request_id for a in unacknowledged if a.reply["replayed"] != (a.request_id in before)]
    assert misreported == []
    after = check_exactly_once(attempts, stack.user_db)
    assert after["acknowledged"] == len(attempts)
    return {**counts, "unacknowledged": len(unacknowledged), "committed_unacknowledged": committed_unacknowledged}


@pytest.mark.parametrize(("run", "per_student", "kill_after"), QUICK)
async def test_sigkill_loses_and_duplicates_nothing(
    stack: Stack, students: list[Student], run: int, per_student: int, kill_after: float
) -> None:
    counts = await kill_round(stack, students, per_student, kill_after)
    print(f"durability run {run} kill after {kill_after:.2f}s: {counts}")


@pytest.mark.slow
@pytest.mark.parametrize(("run", "per_student", "kill_after"), SLOW)
async def test_sigkill_long_runs(
    stack: Stack, students: list[Student], run: int, per_student: int, kill_after: float
) -> None:
    counts = await kill_round(stack, students, per_student, kill_after)
    print(f"durability long run {run} kill after {kill_after:.2f}s: {counts}")
