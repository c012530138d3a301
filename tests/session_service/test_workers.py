"""Where storage calls run: short lookups on the event loop on SQLite only, other reads and writes on threads."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from session_service.storage.engine import Database
from session_service.workers import Workers, WriterThread


def _thread(_db: Database) -> int:
    return threading.get_ident()


@pytest.fixture
def sqlite_workers(tmp_path: Path) -> Workers:
    return Workers(Database(f"sqlite:///{tmp_path / 'user_data.db'}"))


async def test_a_lookup_runs_on_the_event_loop_on_sqlite(sqlite_workers: Workers) -> None:
    try:
        here = threading.get_ident()
        assert await sqlite_workers.lookup(_thread) == here
        assert await sqlite_workers.read(_thread) != here
        assert await sqlite_workers.write(_thread) != here
    finally:
        sqlite_workers.close()
        sqlite_workers.db.dispose()


async def test_a_lookup_runs_on_a_reader_thread_on_postgresql() -> None:
    # No connection is opened: the engine connects lazily and the function never touches it.
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    workers = Workers(db)
    try:
        assert db.is_sqlite is False
        assert await workers.lookup(_thread) != threading.get_ident()
    finally:
        workers.close()
        db.dispose()


def test_answer_groups_go_ahead_of_queued_writes_taking_turns_with_them() -> None:
    writer = WriterThread("test-writer")
    gate, order = threading.Event(), list[str]()
    try:
        # The writer is busy with a long transaction while advances and answer groups queue behind it: an answer
        # group goes next, then the writes take turns (advances are not starved by a stream of answers), each
        # still one at a time on one thread, each queue in its own order. An advance takes longer than an answer
        # group here, so each ordinary turn holds one.
        started = threading.Event()

        def advance(name: str) -> Callable[[], None]:
            def write() -> None:
                time.sleep(0.2)
                order.append(name)

            return write

        def long_transaction() -> None:
            started.set()
            gate.wait()

        busy = writer.submit(long_transaction)
        assert started.wait(timeout=5)
        queued: list[concurrent.futures.Future[None]] = [
            writer.submit(advance("advance 1")),
            writer.submit(lambda: order.append("answers 1"), urgent=True),
            writer.submit(advance("advance 2")),
            writer.submit(lambda: order.append("answers 2"), urgent=True),
            writer.submit(lambda: order.append("answers 3"), urgent=True),
        ]
        gate.set()
        busy.result(timeout=5)
        for future in queued:
            future.result(timeout=5)
        assert order == ["answers 1", "advance 1", "answers 2", "advance 2", "answers 3"]
        failing = writer.submit(lambda: 1 / 0, urgent=True)
        with pytest.raises(ZeroDivisionError):
            failing.result(timeout=5)
    finally:
        writer.shutdown()


def test_after_a_long_answer_group_the_queued_writes_get_as_long() -> None:
    writer = WriterThread("test-writer")
    gate, order = threading.Event(), list[str]()
    try:
        # A group of many answers takes a while; the sign-ins queued meanwhile, each written in an instant, all go
        # in the turn that follows it (the answer group queued meanwhile after them), not one per answer group.
        started = threading.Event()

        def long_answer_group() -> None:
            started.set()
            gate.wait()
            time.sleep(0.5)
            order.append("answers 1")

        busy = writer.submit(long_answer_group, urgent=True)
        assert started.wait(timeout=5)
        queued: list[concurrent.futures.Future[None]] = [
            writer.submit(lambda: order.append("sign-in 1")),
            writer.submit(lambda: order.append("sign-in 2")),
            writer.submit(lambda: order.append("answers 2"), urgent=True),
            writer.submit(lambda: order.append("sign-in 3")),
        ]
        gate.set()
        busy.result(timeout=5)
        for future in queued:
            future.result(timeout=5)
        assert order == ["answers 1", "sign-in 1", "sign-in 2", "sign-in 3", "answers 2"]
    finally:
        writer.shutdown()


def test_the_writer_writes_what_was_queued_before_it_stops() -> None:
    writer = WriterThread("test-writer")
    gate = threading.Event()
    busy = writer.submit(gate.wait)
    queued = writer.submit(lambda: "written")
    threading.Timer(0.05, gate.set).start()
    writer.shutdown()
    assert busy.done() and queued.result(timeout=0) == "written"
    with pytest.raises(RuntimeError):
        writer.submit(lambda: None)
