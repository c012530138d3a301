"""Group commit: concurrent writes gathered while the previous batch commits, then written in one transaction."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeAlias, TypeVar

from toefl_core.errors import Unavailable

log = logging.getLogger(__name__)
J = TypeVar("J")
R = TypeVar("R")
MAX_BATCH = 256
SHUTTING_DOWN = "the service is restarting; this was not saved; send it again"

_Batch: TypeAlias = list[tuple[J, asyncio.Future[R | Exception]]]


def shutting_down() -> Unavailable:
    # Another instance, or this one restarted, takes the write (an answer, an advance) within about a second.
    return Unavailable(SHUTTING_DOWN, reason="SHUTTING_DOWN", retry_after_seconds=1.0)


class GroupCommit(Generic[J, R]):
    """One commit (one fsync) for every job that arrived while the last commit was running.

    `start_batch` hands the jobs to the database writer (one transaction, on its thread) and returns a future of,
    per job, its result or the exception refusing it; `submit` resolves only after that transaction committed, so
    an acknowledged job is on disk. Jobs are written while `run_forever` runs.

    The writer's thread hands a finished batch straight back to the event loop, which answers its callers and
    starts the next batch in that one turn: a student's answer crosses each turn of a busy loop (a room changing
    modules together fills every turn), and a relay through a task took two turns more (docs/PERFORMANCE.md).
    """

    def __init__(
        self,
        start_batch: Callable[[Sequence[J]], concurrent.futures.Future[Sequence[R | Exception]]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._start_batch = start_batch
        self._max_batch = max_batch
        self._waiting: collections.deque[tuple[J, asyncio.Future[R | Exception]]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Cleared while a batch is on the writer or a start of one is called for (the jobs of one turn share it).
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    async def submit(self, job: J) -> R:
        if self._closed:
            raise shutting_down()
        future: asyncio.Future[R | Exception] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, future))
        self._start_soon()
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    def _start_soon(self) -> None:
        # At the end of this turn, so that the jobs submitted in it go together.
        if self._loop is not None and self._idle.is_set() and not self._closed:
            self._idle.clear()
            self._loop.call_soon(self._start)

    def _start(self) -> None:
        if self._closed or not self._waiting:
            self._done_writing()
            return
        batch: _Batch[J, R] = []
        while self._waiting and len(batch) < self._max_batch:
            batch.append(self._waiting.popleft())
        try:
            written = self._start_batch([job for job, _ in batch])
        except Exception as exc:  # the writer shut down: refused like a failed batch
            written = concurrent.futures.Future()
            written.set_exception(exc)
        loop = self._loop
        assert loop is not None
        # On the writer's thread once committed: back to the loop in one turn.
        written.add_done_callback(lambda done: loop.call_soon_threadsafe(self._written, batch, done))

    def _written(self, batch: _Batch[J, R], written: concurrent.futures.Future[Sequence[R | Exception]]) -> None:
        self._deliver(batch, written)
        if self._waiting and not self._closed:
            self._start()
        else:
            self._done_writing()

    def _done_writing(self) -> None:
        self._idle.set()

    @staticmethod
    def _deliver(batch: _Batch[J, R], written: concurrent.futures.Future[Sequence[R | Exception]]) -> None:
        error = None if written.cancelled() else written.exception()
        if error is not None:
            log.error("a batch of %d writes failed; none was acknowledged", len(batch), exc_info=error)
        failure = error if isinstance(error, Exception) else shutting_down()
        ok = error is None and not written.cancelled()
        results: Sequence[R | Exception] = written.result() if ok else [failure] * len(batch)
        for (_job, future), result in zip(batch, results, strict=True):
            # A caller that gave up (cancelled RPC) is simply not told; its write stands or not as committed.
            if not future.done():
                future.set_result(result)

    async def run_forever(self) -> None:
        """Write batches until cancelled; the batch being written then is still answered, the rest refused."""
        self._loop = asyncio.get_running_loop()
        try:
            self._start_soon()
            await self._loop.create_future()
        finally:
            self._closed = True
            # asyncio.wait never cancels what it waits for: a batch handed to the database finishes.
            idle = asyncio.ensure_future(self._idle.wait())
            await asyncio.wait({idle})
            while self._waiting:
                _job, future = self._waiting.popleft()
                if not future.done():
                    future.set_result(shutting_down())
