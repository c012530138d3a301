"""Group commit: jobs that arrive together share one write, each gets its own result, shutdown refuses cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from session_service.batching import GroupCommit
from toefl_core.errors import FailedPrecondition, Unavailable


class Writer:
    """Records the batches it is handed; odd numbers are refused, 13 breaks the whole batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    def start(self, jobs: Sequence[int]) -> asyncio.Future[Sequence[int | Exception]]:
        self.batches.append(list(jobs))
        return asyncio.ensure_future(self._finish(list(jobs)))

    async def _finish(self, jobs: list[int]) -> Sequence[int | Exception]:
        await self.release.wait()
        if 13 in jobs:
            raise OSError("disk full")
        return [FailedPrecondition(f"{j} is odd") if j % 2 else j * 10 for j in jobs]


async def test_jobs_arriving_during_a_write_share_the_next_one() -> None:
    writer = Writer()
    group: GroupCommit[int, int] = GroupCommit(writer.start)
    runner = asyncio.create_task(group.run_forever())
    first = asyncio.create_task(group.submit(2))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(group.submit(j)) for j in (4, 5, 6)]
    await asyncio.sleep(0.01)
    writer.release.set()
    assert await first == 20
    assert await later[0] == 40 and await later[2] == 60
    with pytest.raises(FailedPrecondition, match="5 is odd"):
        await later[1]
    assert writer.batches == [[2], [4, 5, 6]]
    with pytest.raises(OSError, match="disk full"):
        await group.submit(13)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def test_shutdown_finishes_the_batch_being_written_and_refuses_the_rest() -> None:
    writer = Writer()
    group: GroupCommit[int, int] = GroupCommit(writer.start)
    runner = asyncio.create_task(group.run_forever())
    in_flight = asyncio.create_task(group.submit(2))
    await asyncio.sleep(0.01)
    queued = asyncio.create_task(group.submit(4))
    await asyncio.sleep(0.01)
    runner.cancel()
    await asyncio.sleep(0.01)
    writer.release.set()
    await asyncio.gather(runner, return_exceptions=True)
    assert await in_flight == 20
    with pytest.raises(Unavailable, match="send it again"):
        await queued
    with pytest.raises(Unavailable):
        await group.submit(6)
