"""The worker threads the servicers share: one database writer, a few readers (also for CPU-bound work)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from session_service.storage.engine import Database

T = TypeVar("T")


class Workers:
    def __init__(self, db: Database) -> None:
        self.db = db
        # One writer thread: SQLite takes one writer at a time anyway, and ordering writes here avoids lock waits.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="user-db-write")
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="user-db-read")

    async def write(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`fn(db, **kwargs)` on the writer thread."""
        return await asyncio.wrap_future(self.submit_write(functools.partial(fn, self.db, **kwargs)))

    def submit_write(self, call: Callable[[], T]) -> asyncio.Future[T]:
        return asyncio.wrap_future(self._writer.submit(call))

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
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
