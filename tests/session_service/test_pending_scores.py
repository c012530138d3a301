"""The queue of closed sections to score (section_scoring.PendingScores) on a real writer: a read does not wait for
the writer to be idle, and a start takes up the marks a stop left; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from sqlalchemy import func, select

from session_service import writer
from session_service.section_scoring import PendingScores
from session_service.storage import scores
from session_service.storage.engine import Database
from session_service.storage.models import ScoreVersion
from session_service.workers import Workers
from tests.session_service.test_advance_groups import SCORER, T0, move, seat


def versions(db: Database) -> int:
    with db.read_statement() as conn:
        return int(conn.execute(select(func.count()).select_from(ScoreVersion)).scalar_one())


def finished_with_a_section(db: Database) -> None:
    """ses-0 past Reading's router, then finished: its Reading closed, marked, not scored."""
    seat(db, 1)
    writer.advance_group(db, jobs=[move(0)])
    writer.finish(db, session_id="ses-0", now_ms=T0 + 2_000)


@contextlib.asynccontextmanager
async def busy_writer(workers: Workers) -> AsyncIterator[None]:
    """Ordinary writes always queued on the writer, so that an idle turn never comes while it lasts."""
    stop = threading.Event()

    async def pump() -> None:
        # Ten queued at all times: the event loop would have to lag by ten writes for the queue to run dry.
        queued = [workers.submit_write(lambda: stop.wait(0.002)) for _ in range(10)]
        while not stop.is_set():
            queued.append(workers.submit_write(lambda: stop.wait(0.002)))
            await queued.pop(0)
        await asyncio.gather(*queued)

    pumping = asyncio.create_task(pump())
    await asyncio.sleep(0.05)
    try:
        yield
    finally:
        stop.set()
        await pumping


async def test_a_read_has_a_queued_session_scored_without_waiting_for_an_idle_turn(db: Database) -> None:
    finished_with_a_section(db)
    workers = Workers(db)
    pending = PendingScores(workers, SCORER)
    runner = asyncio.create_task(pending.run_forever())
    try:
        async with busy_writer(workers):
            pending.add("ses-0")
            # The run loop has handed the session to the writer's idle queue, which the busy writer never reaches.
            await asyncio.sleep(0.1)
            assert versions(db) == 0
            await asyncio.wait_for(pending.settled("ses-0"), timeout=10)
            assert versions(db) == 1
            assert scores.pending_session_ids(db) == []
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        workers.close()


async def test_a_start_scores_the_sessions_a_stop_left_marked(db: Database) -> None:
    finished_with_a_section(db)
    assert scores.pending_session_ids(db) == ["ses-0"]
    workers = Workers(db)
    pending = PendingScores(workers, SCORER)
    runner = asyncio.create_task(pending.run_forever())
    try:
        for _ in range(600):
            if not scores.pending_session_ids(db):
                break
            await asyncio.sleep(0.05)
        assert scores.pending_session_ids(db) == []
        assert versions(db) == 1
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        workers.close()
