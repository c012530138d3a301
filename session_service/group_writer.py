"""Writes of one kind (answers, advances) gathered into groups on the single writer thread, each acknowledged
only once its group's transaction has committed (one commit, one fsync, for every write that arrived meanwhile)."""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from session_service import writer
from session_service.batching import MAX_BATCH, GroupCommit
from session_service.domain.scores import Scorer
from session_service.storage.answers import Submission, SubmitOutcome
from session_service.storage.engine import Database
from session_service.workers import Workers

J = TypeVar("J")
R = TypeVar("R")

# Advances in one transaction at most: each writes a module's pinned content, about a millisecond, and an answer
# group waits for the whole group being written: four share a commit and keep that wait short (uncapped, a room's
# 400 advances made a few long transactions; docs/PERFORMANCE.md).
MAX_ADVANCE_GROUP = 4


class GroupWriter(Generic[J, R]):
    """`unit(db, group)` is one transaction writing a group and giving, per job, its result or the DomainError
    refusing it; `urgent` groups (answers) go ahead of the other writes queued on the writer."""

    def __init__(
        self,
        workers: Workers,
        unit: Callable[[Database, Sequence[J]], Sequence[R | Exception]],
        *,
        urgent: bool = False,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._workers = workers
        self._unit = unit
        self._urgent = urgent
        self._group: GroupCommit[J, R] = GroupCommit(self._write_group, max_batch=max_batch)

    async def submit(self, job: J) -> R:
        """The job's result once its group is on disk; a refusal is raised as its DomainError."""
        return await self._group.submit(job)

    async def run_forever(self) -> None:
        """Write groups until cancelled; the group being written then is still answered."""
        await self._group.run_forever()

    def _write_group(self, group: Sequence[J]) -> concurrent.futures.Future[Sequence[R | Exception]]:
        unit = functools.partial(self._unit, self._workers.db, group)
        return self._workers.start_write(unit, urgent=self._urgent)


def answer_writer(workers: Workers, scorer: Scorer) -> GroupWriter[Submission, SubmitOutcome]:
    """Answers: the stored answer (or the one stored before under its request id); a late answer expires its
    module, which may close and score a section."""

    def unit(db: Database, group: Sequence[Submission]) -> Sequence[SubmitOutcome | Exception]:
        return writer.submit_answers(db, submissions=group, scorer=scorer)

    return GroupWriter(workers, unit, urgent=True)


def advance_writer(workers: Workers) -> GroupWriter[writer.Advance, writer.Advanced]:
    """Module changes: what each wrote (or found applied before under its request id); a section one closes is
    scored afterwards (session_service.section_scoring). An ordinary write: answer groups keep their turn ahead."""

    def unit(db: Database, group: Sequence[writer.Advance]) -> Sequence[writer.Advanced | Exception]:
        return writer.advance_group(db, jobs=group)

    return GroupWriter(workers, unit, max_batch=MAX_ADVANCE_GROUP)
