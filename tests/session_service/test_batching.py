"""Group commit: jobs that arrive together share one write, each gets its own result, shutdown refuses cleanly."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Sequence

import pytest

from session_service.batching import GroupCommit
from toefl_core.errors import FailedPrecondition, Unavailable

Written = concurrent.futures.Future[Sequence[int | Exception]]


class Writer:
    """Records the batches it is handed and finishes them when told; odd numbers are refused, 13 breaks the whole
    batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.pending: list[tuple[list[int], Written]] = []

    def start(self, jobs: Sequence[int]) -> Written:
        written: Written = concurrent.futures.Future()
        self.batches.append(list(jobs))
        self.pending.append((list(jobs), written))
        return written

    def finish(self) -> None:
        """Every batch handed over so far, each from a thread of its own, as the database writer does."""
        for jobs, written in self.pending:
            thread = threading.Thread(target=self._finish, args=(jobs, written))
            thread.start()
            thread.join()
        self.pending.clear()

    @staticmethod
    def _finish(jobs: list[int], written: Written) -> None:
        if 13 in jobs:
            written.set_exception(OSError("disk full"))
        else:
            written.set_result([FailedPrecondition(f"{j} is odd") if j % 2 else j * 10 for j in jobs])


async def turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_jobs_arriving_during_a_write_share_the_next_one() -> None:
    writer = Writer()
    group: GroupCommit[int, int] = GroupCommit(writer.start)
    runner = asyncio.create_task(group.run_forever())
    first = asyncio.create_task(group.submit(2))
    await turns(3)
    later = [asyncio.create_task(group.submit(j)) for j in (4, 5, 6)]
    await turns(3)
    assert writer.batches == [[2]]
    writer.finish()
    assert await first == 20
    await turns(3)
    writer.finish()
    assert await later[0] == 40 and await later[2] == 60
    with pytest.raises(FailedPrecondition, match="5 is odd"):
        await later[1]
    assert writer.batches == [[2], [4, 5, 6]]
    failing = asyncio.create_task(group.submit(13))
    await turns(3)
    writer.finish()
    with pytest.raises(OSError, match="disk full"):
        await failing
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def test_jobs_submitted_before_the_writer_runs_go_together_once_it_does() -> None:
    writer = Writer()
    group: GroupCommit[int, int] = GroupCommit(writer.start)
    early = [asyncio.create_task(group.submit(j)) for j in (2, 4)]
    await turns(3)
    assert writer.batches == []
    runner = asyncio.create_task(group.run_forever())
    await turns(3)
    writer.finish()
    assert [await e for e in early] == [20, 40]
    assert writer.batches == [[2, 4]]
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def test_a_written_batch_reaches_its_callers_in_the_next_turns() -> None:
    """The writer's thread hands the batch back to the loop, which answers the caller: three turns after the
    write here (the hand-back, the submitting task, this test awaiting it), where a relay through a task took five
    (each turn of a busy loop is a wait for every student's answer)."""
    writer = Writer()
    group: GroupCommit[int, int] = GroupCommit(writer.start)
    runner = asyncio.create_task(group.run_forever())
    counted = 0

    async def ticker() -> None:
        nonlocal counted
        while True:
            counted += 1
            await asyncio.sleep(0)

    answer = asyncio.create_task(group.submit(2))
    await turns(3)
    ticking = asyncio.create_task(ticker())
    await turns(2)
    writer.finish()
    at_write = counted
    assert await answer == 20
    assert counted - at_write <= 3
    ticking.cancel()
    runner.cancel()
    await asyncio.gather(ticking, runner, return_exceptions=True)


async def test_shutdown_finishes_the_batch_being_written_and_refuses_the_rest() -> None:
    writer = Writer()
    group: GroupCommit[int, int] = GroupCommit(writer.start)
    runner = asyncio.create_task(group.run_forever())
    in_flight = asyncio.create_task(group.submit(2))
    await turns(3)
    queued = asyncio.create_task(group.submit(4))
    await turns(3)
    runner.cancel()
    await turns(3)
    assert not runner.done()
    writer.finish()
    await asyncio.gather(runner, return_exceptions=True)
    assert await in_flight == 20
    with pytest.raises(Unavailable, match="send it again"):
        await queued
    with pytest.raises(Unavailable):
        await group.submit(6)
    assert writer.batches == [[2]]


async def test_shutdown_with_nothing_written_stops_at_once() -> None:
    group: GroupCommit[int, int] = GroupCommit(Writer().start)
    runner = asyncio.create_task(group.run_forever())
    await turns(2)
    runner.cancel()
    await asyncio.wait_for(asyncio.gather(runner, return_exceptions=True), timeout=5)
    assert runner.done()
