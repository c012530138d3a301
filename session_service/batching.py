"""Group commit: concurrent writes gathered while the previous batch commits, then written in one transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
J = TypeVar("J")
R = TypeVar("R")
MAX_BATCH = 256


class GroupCommit(Generic[J, R]):
    """One commit (one fsync) for every job that arrived while the last commit was running.

    `write_batch` runs the jobs in one transaction and returns, per job, its result or the exception refusing
    it; `submit` resolves only after that transaction committed, so an acknowledged job is on disk.
    """

    def __init__(self, write_batch: Callable[[Sequence[J]], Awaitable[Sequence[R | Exception]]]) -> None:
        self._write_batch = write_batch
        self._queue: asyncio.Queue[tuple[J, asyncio.Future[R | Exception]]] = asyncio.Queue()

    async def submit(self, job: J) -> R:
        future: asyncio.Future[R | Exception] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    async def run_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results: Sequence[R | Exception] = await self._write_batch([job for job, _ in batch])
            except Exception as exc:
                log.exception("a batch of %d writes failed; none was acknowledged", len(batch))
                results = [exc] * len(batch)
            for (_job, future), result in zip(batch, results, strict=True):
                # A caller that gave up (cancelled RPC) is simply not told; its write stands or not as committed.
                if not future.done():
                    future.set_result(result)
