"""Sections that advances and finishes closed, scored at the writer's idle turns, not in the closing write."""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from session_service import writer
from session_service.domain.modules import now_ms
from session_service.domain.scores import Scorer
from session_service.storage import scores
from session_service.workers import Workers

log = logging.getLogger(__name__)

# Sessions scored in one transaction at most: about 3 ms each, so an answer group that arrives meanwhile waits for
# a dozen milliseconds at most, and a room's scores still share commits.
SCORE_BATCH = 4
# The share of the time the queue's scoring may take: after each turn it waits three times as long as the turn
# took. A score is computed on the writer thread, under the GIL the event loop needs for every answer: a room's 500
# scores (1.5 s of CPU) run back to back would slow every answer of the room after its module change.
IDLE_SHARE = 0.25


class PendingScores:
    """Sessions where an advance or a finish closed a section whose score is not written yet.

    A room leaving a section together would otherwise score every student's section inside its advances'
    transactions: the room's burst of module changes, and every answer queued behind it on the writer, waited for
    the whole room's scoring. Nothing is lost if the process stops first: the closing transaction marks the session
    in the database (`scores.mark_pending`), and a start queues every mark (`recover`). A score read waits for the
    sessions it reads (`settled`, `settled_all`), so no reader sees a section pending that this process closed.
    """

    def __init__(self, workers: Workers, scorer: Scorer, *, batch: int = SCORE_BATCH) -> None:
        self._workers = workers
        self._scorer = scorer
        self._batch = batch
        # Insertion-ordered: the sections closed first are scored first.
        self._queued: dict[str, None] = {}
        self._scoring: dict[str, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()

    def add(self, session_id: str) -> None:
        self._queued[session_id] = None
        self._wake.set()

    async def recover(self) -> None:
        """Queue the sessions marked in the database: a section closed before a stop may have no score yet."""
        for session_id in await self._workers.read(scores.pending_session_ids):
            self.add(session_id)

    async def settled(self, session_id: str) -> None:
        """Once the session's closed sections are scored: at once when none is queued, else by an ordinary write
        now; a reader does not wait for the writer to be idle (under load an idle turn can be seconds away), and a
        turn that comes later for the same session finds nothing left to score."""
        if session_id not in self._queued and session_id not in self._scoring:
            return
        self._queued.pop(session_id, None)
        try:
            await self._score([session_id], idle=False)
        except Exception:
            # The read goes on without it: the section shows as pending, and stays marked for the next start.
            log.exception("scoring the closed sections of session %s failed", session_id)

    async def settled_all(self) -> None:
        """Once every session queued, or waiting for an idle turn, is scored: by ordinary writes, now."""
        waiting = list(dict.fromkeys([*self._queued, *self._scoring]))
        self._queued.clear()
        for start in range(0, len(waiting), self._batch):
            group = waiting[start : start + self._batch]
            try:
                await self._score(group, idle=False)
            except Exception:
                log.exception("scoring the closed sections of %d session(s) failed", len(group))

    async def run_forever(self) -> None:
        """Score queued sessions, a few per transaction, each time the writer has nothing else to write."""
        await self.recover()
        while True:
            await self._wake.wait()
            if not self._queued:
                self._wake.clear()
                continue
            group = list(self._queued)[: self._batch]
            for session_id in group:
                del self._queued[session_id]
            started = time.monotonic()
            try:
                await self._score(group, idle=True)
            except Exception:
                # The sessions stay marked in the database: the next start scores them.
                log.exception("scoring the closed sections of %d session(s) failed", len(group))
            await asyncio.sleep((time.monotonic() - started) * (1 / IDLE_SHARE - 1))

    async def _score(self, session_ids: list[str], *, idle: bool) -> None:
        call = functools.partial(
            writer.score_sessions, self._workers.db, session_ids=session_ids, scorer=self._scorer, now_ms=now_ms()
        )
        scoring = self._workers.submit_write(call, idle=idle)
        for session_id in session_ids:
            self._scoring[session_id] = scoring
        try:
            await asyncio.shield(scoring)
        finally:
            for session_id in session_ids:
                if self._scoring.get(session_id) is scoring:
                    del self._scoring[session_id]
