"""The advance writer: module changes written in groups by the single writer thread, each acknowledged only once
its group's transaction has committed (one commit, one fsync, for every advance that arrived meanwhile)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from session_service import writer
from session_service.batching import GroupCommit
from session_service.domain.scores import Scorer
from session_service.workers import Workers

# Advances in one transaction at most: each writes a module's pinned content (and may score a section), a few
# milliseconds, and an answer group waits for the whole group being written: four share a commit and keep that
# wait short (uncapped, a room's 400 advances made a few long transactions; docs/PERFORMANCE.md).
MAX_ADVANCE_GROUP = 4


class AdvanceWriter:
    def __init__(self, *, workers: Workers, scorer: Scorer) -> None:
        self._workers = workers
        # An advance that closes a section scores it in the same transaction.
        self._scorer = scorer
        self._group: GroupCommit[writer.Advance, bool] = GroupCommit(
            self._write_group, max_batch=MAX_ADVANCE_GROUP
        )

    async def submit(self, job: writer.Advance) -> bool:
        """True once the advance is on disk, False if one with its request id was applied before; a refusal
        (the session moved on, paused, voided) is raised as its DomainError."""
        return await self._group.submit(job)

    async def run_forever(self) -> None:
        """Write groups until cancelled; the group being written then is still answered."""
        await self._group.run_forever()

    def _write_group(self, group: Sequence[writer.Advance]) -> asyncio.Future[Sequence[bool | Exception]]:
        # An ordinary write: the answer groups keep their turn ahead of it on the writer.
        unit = functools.partial(writer.advance_group, self._workers.db, jobs=group, scorer=self._scorer)
        return self._workers.submit_write(unit)
