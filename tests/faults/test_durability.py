"""SIGKILL session_service while 200 students answer through the gateway: every acknowledged answer stays, once."""

from __future__ import annotations

import random

import pytest

from launcher.stack import Stack
from tests.faults.exactly_once import fault_round
from tests.support.exam import Student

STUDENTS = 200
QUICK = [(n, random.Random(n).uniform(0.3, 1.2)) for n in range(5)]
SLOW = [(n, random.Random(100 + n).uniform(0.3, 8.0)) for n in range(10)]


async def kill_round(stack: Stack, students: list[Student], kill_after: float) -> dict[str, int]:
    assert stack.session is not None
    return await fault_round(stack, students, kill_after, stack.session.kill, stack.restart_session)


@pytest.mark.parametrize(("run", "kill_after"), QUICK)
async def test_sigkill_loses_and_duplicates_nothing(
    stack: Stack, students: list[Student], run: int, kill_after: float
) -> None:
    counts = await kill_round(stack, students, kill_after)
    print(f"durability run {run} kill after {kill_after:.2f}s: {counts}")


@pytest.mark.slow
@pytest.mark.parametrize(("run", "kill_after"), SLOW)
async def test_sigkill_long_runs(stack: Stack, students: list[Student], run: int, kill_after: float) -> None:
    counts = await kill_round(stack, students, kill_after)
    print(f"durability long run {run} kill after {kill_after:.2f}s: {counts}")
