"""Group commit: concurrent writes gathered while the previous batch commits, then written in one transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from toefl_core.errors import Unavailable

log = logging.getLogger(__name__)
J = TypeVar("J")
R = TypeVar("R")
MAX_BATCH = 256
SHUTTING_DOWN = "the service is restarting; this was not saved; send it again"


def shutting_down() -> Unavailable:
    # Another instance, or this one restarted, takes the write (an answer, an advance) within about a second.
    return Unavailable(SHUTTING_DOWN, reason="SHUTTING_DOWN", retry_after_seconds=1.0)


class GroupCommit(Generic[J, R]):
    """One commit (one fsync) for every job that arrived while the last commit was running.

    `start_batch` hands the jobs to the database writer (one transaction) and returns a future of, per job, its
    result or the exception refusing it; `submit` resolves only after that transaction committed, so an
    acknowledged job is on disk.
    """

    def __init__(
        self,
        start_batch: Callable[[Sequence[J]], asyncio.Future[Sequence[R | Exception]]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._start_batch = start_batch
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[J, asyncio.Future[R | Exception]]] = asyncio.Queue()
        self._closed = False

    async def submit(self, job: J) -> R:
        if self._closed:
            raise shutting_down()
        future: asyncio.Future[R | Exception] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    @staticmethod
    def _deliver(
        batch: list[tuple[J, asyncio.Future[R | Exception]]], written: asyncio.Future[Sequence[R | Exception]]
    ) -> None:
        error = written.exception()
        if error is not None:
            log.error("a batch of %d writes failed; none was acknowledged", len(batch), exc_info=error)
        failure = error if isinstance(error, Exception) else shutting_down()
        results: Sequence[R | Exception] = written.result() if error is None else [failure] * len(batch)
        for (_job, future), result in zip(batch, results, strict=True):
            # A caller that gave up (cancelled RPC) is simply not told; its write stands or not as committed.
            if not future.done():
                future.set_result(result)

    async def run_forever(self) -> None:
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self._max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                written = self._start_batch([job for job, _ in batch])
                try:
                    # asyncio.wait never cancels what it waits for: a batch handed to the database finishes.
                    await asyncio.wait({written})
                except asyncio.CancelledError:
                    # Shutting down: still answer the callers of the batch being written, then stop.
                    await asyncio.wait({written})
                    self._deliver(batch, written)
                    raise
                self._deliver(batch, written)
        finally:
            self._closed = True
            while not self._queue.empty():
                _job, future = self._queue.get_nowait()
                if not future.done():
                    future.set_result(shutting_down())
