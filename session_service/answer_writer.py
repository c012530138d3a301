"""The answer writer: answers written in groups by the single writer thread, each acknowledged only once its
group's transaction has committed (one commit, one fsync, for every answer that arrived meanwhile)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from session_service import writer
from session_service.batching import GroupCommit
from session_service.domain.scores import Scorer
from session_service.storage.answers import Submission, SubmitOutcome
from session_service.workers import Workers


class AnswerWriter:
    def __init__(self, *, workers: Workers, scorer: Scorer) -> None:
        self._workers = workers
        # A late answer expires its module, which may close and score a section.
        self._scorer = scorer
        self._group: GroupCommit[Submission, SubmitOutcome] = GroupCommit(self._write_group)

    async def submit(self, submission: Submission) -> SubmitOutcome:
        """The answer stored (or the one stored before under its request id), once on disk; a refusal (the
        module closed, its deadline passed) is raised as its DomainError."""
        return await self._group.submit(submission)

    async def run_forever(self) -> None:
        """Write groups until cancelled; the group being written then is still answered."""
        await self._group.run_forever()

    def _write_group(self, group: Sequence[Submission]) -> asyncio.Future[Sequence[SubmitOutcome | Exception]]:
        unit = functools.partial(writer.submit_answers, self._workers.db, submissions=group, scorer=self._scorer)
        return self._workers.submit_write(unit, urgent=True)
