"""The worker threads the servicers share: one database writer, a few readers (also for CPU-bound work)."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from session_service.storage.engine import Database

T = TypeVar("T")
_Job = tuple[Callable[[], Any], concurrent.futures.Future[Any]]


class WriterThread:
    """One thread running write transactions one at a time, the urgent ones (answer groups) ahead of the rest,
    taking turns with them by time; idle ones (a closed section's score) only when nothing else waits.

    A student waiting for an answer's acknowledgement waits at most for the turn being written, never for all the
    advances, starts and expiries queued before it (a room changing modules together queues dozens); and the
    other writes are never starved by a stream of answer groups: after an answer group, the waiting ordinary
    writes get the writer for as long as that group took (one at least). Turns by count gave a sign-in, written
    alone, the same turn as a group of a hundred answers: under a stream of answers, a class signing in waited
    at the writer until the gateway gave up.
    """

    def __init__(self, name: str) -> None:
        self._urgent: collections.deque[_Job] = collections.deque()
        self._ordinary: collections.deque[_Job] = collections.deque()
        self._idle: collections.deque[_Job] = collections.deque()
        self._ready = threading.Condition()
        self._closing = False
        self._urgent_last = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, call: Callable[[], T], *, urgent: bool = False, idle: bool = False
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._ready:
            if self._closing:
                raise RuntimeError("the writer is shut down")
            (self._urgent if urgent else self._idle if idle else self._ordinary).append((call, future))
            self._ready.notify()
        return future

    def _next(self) -> tuple[_Job, bool] | None:
        """The next job and whether it is urgent; None once shut down with nothing queued."""
        with self._ready:
            while not self._urgent and not self._ordinary:
                if self._idle:
                    self._urgent_last = False
                    return self._idle.popleft(), False
                if self._closing:
                    return None
                self._ready.wait()
            # Strict priority was measured to starve advances in the closed loop (docs/PERFORMANCE.md): the urgent
            # queue goes first unless it went last and an ordinary write is waiting.
            take_urgent = bool(self._urgent) and not (self._urgent_last and self._ordinary)
            self._urgent_last = take_urgent
            return (self._urgent.popleft(), True) if take_urgent else (self._ordinary.popleft(), False)

    def _next_ordinary(self) -> _Job | None:
        with self._ready:
            return self._ordinary.popleft() if self._ordinary else None

    def _run(self) -> None:
        urgent_took = 0.0
        while (next_job := self._next()) is not None:
            job, urgent = next_job
            started = time.perf_counter()
            self._write(job)
            took = time.perf_counter() - started
            if urgent:
                urgent_took = took
                continue
            # The ordinary writes' turn lasts as long as the last answer group took.
            while took < urgent_took and (more := self._next_ordinary()) is not None:
                self._write(more)
                took = time.perf_counter() - started

    @staticmethod
    def _write(job: _Job) -> None:
        call, future = job
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = call()
        except BaseException as exc:  # handed to the caller, as ThreadPoolExecutor does
            future.set_exception(exc)
        else:
            future.set_result(result)

    def shutdown(self) -> None:
        """Write what was queued, then stop."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join()


class Workers:
    def __init__(self, db: Database) -> None:
        self.db = db
        # One writer thread: SQLite takes one writer at a time anyway, and ordering writes here avoids lock waits.
        self._writer = WriterThread("user-db-write")
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="user-db-read")

    async def write(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`fn(db, **kwargs)` on the writer thread."""
        return await self.submit_write(functools.partial(fn, self.db, **kwargs))

    def submit_write(
        self, call: Callable[[], T], *, urgent: bool = False, idle: bool = False
    ) -> asyncio.Future[T]:
        """`call()` on the writer thread; `urgent` (answer groups) goes ahead of every ordinary write queued,
        `idle` waits until no other write is queued."""
        return asyncio.wrap_future(self.start_write(call, urgent=urgent, idle=idle))

    def start_write(
        self, call: Callable[[], T], *, urgent: bool = False, idle: bool = False
    ) -> concurrent.futures.Future[T]:
        """As `submit_write`, the writer thread's own future: its callbacks run on that thread."""
        return self._writer.submit(call, urgent=urgent, idle=idle)

    async def read(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`fn(db, **kwargs)` on a reader thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, functools.partial(fn, self.db, **kwargs)
        )

    async def lookup(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`fn(db, **kwargs)` for a short indexed read: on SQLite right here on the event loop, else as `read`.

        In WAL mode a SQLite read never waits for a writer, and handing a sub-millisecond read to a thread costs
        more than the read (two thread switches under one GIL); on PostgreSQL a read is a network round trip.
        """
        if self.db.is_sqlite:
            return fn(self.db, **kwargs)
        return await self.read(fn, **kwargs)

    async def cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, functools.partial(fn, *args))

    def close(self) -> None:
        self._writer.shutdown()
        self._readers.shutdown(wait=True)
