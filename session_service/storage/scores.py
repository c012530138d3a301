"""Storage of scores, rating tasks and ratings; the scoring rule is handed in (a Scorer), not kept here."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, func, insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from session_service.domain.scores import (
    AnswerRow,
    ModuleState,
    RatingOutcome,
    RatingPair,
    RatingTaskRecord,
    RescoreInputs,
    RescorePlan,
    ScoredSession,
    Scorer,
    ScoreVersionRecord,
    ScoringItem,
    SectionFigures,
    SectionInputs,
    SessionExport,
    TotalFigures,
    candidate_version,
    closed_sections,
    sections_to_score,
)
from session_service.domain.states import (
    STAGE_ROUTER,
    STATE_FINISHED,
    TASK_ADJUDICATION,
    TASK_AWAITING,
    TASK_AWAITING_SECOND,
    TASK_FINAL,
)
from session_service.storage import content
from session_service.storage.engine import Database
from session_service.storage.models import (
    Enrolment,
    ExamSession,
    Module,
    ModuleItem,
    PinnedContent,
    RatingRow,
    RatingTask,
    RescoreRequest,
    Response,
    SchoolClass,
    ScoreVersion,
    SectionScoreRow,
    User,
)
from toefl_core.errors import AlreadyExists, DomainError, FailedPrecondition, NotFound
from toefl_core.rating import Rating, RatingStatus, resolve

_TASK_STATE = {
    RatingStatus.UNRATED: TASK_AWAITING,
    RatingStatus.AWAITING_SECOND_RATING: TASK_AWAITING_SECOND,
    RatingStatus.NEEDS_ADJUDICATION: TASK_ADJUDICATION,
    RatingStatus.FINAL: TASK_FINAL,
}


# ---- reading what a score is computed from


def _section_inputs(
    s: Session, session_id: str, sections: Collection[str] | None = None
) -> dict[str, SectionInputs]:
    """Per section (all, or those named): the pinned items in presentation order, latest answers, final ratings."""
    return _section_inputs_of(s, {session_id: sections})[session_id]


# The statements of _section_inputs_of, built once: a section closing at every advance and finish runs them for
# one session, where building a statement and its cache key cost more than the rows it reads.
_PINNED = (
    select(
        Module.session_id,
        Module.section,
        ModuleItem.item_id,
        ModuleItem.revision,
        ModuleItem.task_type,
        ModuleItem.content_digest,
    )
    .join(Module, Module.module_id == ModuleItem.module_id)
    .where(Module.session_id.in_(bindparam("session_ids", expanding=True)))
    .order_by(Module.session_id, Module.sequence, ModuleItem.position)
)
_ANSWERS = select(
    Response.session_id,
    Response.module_id,
    Response.item_id,
    Response.revision,
    Response.response_id,
    Response.answer_json,
    Response.elapsed_ms,
    Response.saved_ms,
).where(Response.session_id.in_(bindparam("session_ids", expanding=True)))
_FINAL_RATINGS = select(RatingTask.response_id, RatingTask.final_score).where(
    RatingTask.session_id.in_(bindparam("session_ids", expanding=True)), RatingTask.state == TASK_FINAL
)


def _section_inputs_of(
    s: Session, wanted: Mapping[str, Collection[str] | None]
) -> dict[str, dict[str, SectionInputs]]:
    """_section_inputs of many sessions (each: all sections, or those named) in four statements in all, so a
    batch of rescores does not pay several round trips per session."""
    session_ids = list(wanted)
    # Tens of thousands of rows for a batch: read as plain Core rows (after flushing what the caller changed),
    # all at once (fetchall, not a fetchone per row), since the ORM's per-row loading was most of a batch read.
    s.flush()
    connection = s.connection()
    pinned: list[tuple[str, str, str, int, str, str]] = []
    for row in connection.execute(_PINNED, {"session_ids": session_ids}).all():
        sid, section, item_id, revision, task_type, digest = row
        named = wanted[sid]
        if named is None or section in named:
            pinned.append((sid, section, item_id, revision, task_type, digest))
    # Each distinct item's bytes once for the whole batch, shared by every session that saw it.
    bodies = content.bodies_of(connection, {row[5] for row in pinned})
    items: dict[str, dict[str, list[ScoringItem]]] = {sid: {} for sid in session_ids}
    # One ScoringItem per distinct pinned item, shared by the sessions that saw it (immutable, like its bytes).
    shared: dict[tuple[str, int, str, str], ScoringItem] = {}
    for sid, section, item_id, revision, task_type, digest in pinned:
        pin = (item_id, revision, task_type, digest)
        item = shared.get(pin)
        if item is None:
            item = shared[pin] = ScoringItem(item_id, revision, task_type, bodies[digest])
        items[sid].setdefault(section, []).append(item)
    # Every revision in one plain read, the latest kept per (module, item) here: cheaper than a GROUP BY joined
    # back to the table, and an answer rarely has more than a revision or two.
    answers: dict[str, dict[str, AnswerRow]] = {sid: {} for sid in session_ids}
    newest: dict[tuple[str, str], int] = {}
    for sid, module_id, item_id, revision, response_id, answer_json, elapsed_ms, saved_ms in connection.execute(
        _ANSWERS, {"session_ids": session_ids}
    ).all():
        key = (module_id, item_id)
        if newest.get(key, -1) < revision:
            newest[key] = revision
            answers[sid][item_id] = AnswerRow(response_id, answer_json, elapsed_ms, saved_ms)
    finals: dict[int, int] = {
        response_id: score
        for response_id, score in connection.execute(_FINAL_RATINGS, {"session_ids": session_ids})
        if score is not None
    }
    result: dict[str, dict[str, SectionInputs]] = {}
    for sid in session_ids:
        by_section = result[sid] = {}
        for section, section_items in items[sid].items():
            ids = {i.item_id for i in section_items}
            section_answers = {k: v for k, v in answers[sid].items() if k in ids}
            by_section[section] = SectionInputs(
                section=section,
                items=tuple(section_items),
                answers=section_answers,
                final_ratings={
                    a.response_id: finals[a.response_id]
                    for a in section_answers.values()
                    if a.response_id in finals
                },
            )
    return result


_SCORED_SESSIONS = select(
    ExamSession.session_id, ExamSession.scope, ExamSession.state, ExamSession.blueprint_version
).where(ExamSession.session_id.in_(bindparam("session_ids", expanding=True)))


def _scored_sessions(s: Session, session_ids: Collection[str]) -> dict[str, ScoredSession]:
    rows = s.connection().execute(_SCORED_SESSIONS, {"session_ids": list(session_ids)})
    return {row.session_id: ScoredSession(*row) for row in rows}


_MODULE_STATES = select(Module.section, Module.stage, Module.status).where(
    Module.session_id == bindparam("session_id")
)


def _closed_sections(s: Session, session: ScoredSession) -> set[str]:
    modules = (ModuleState(*row) for row in s.execute(_MODULE_STATES, {"session_id": session.session_id}))
    return closed_sections(modules, finished=session.state == STATE_FINISHED)


# ---- score versions


# A section row holds exactly the figures, under the same names: read as plain rows, in the dataclass's order.
_SECTION_FIELDS = tuple(f.name for f in dataclasses.fields(SectionFigures))
_SECTION_COLUMNS = tuple(SectionScoreRow.__table__.c[name] for name in _SECTION_FIELDS)
# Built once, as those of _section_inputs_of: a section score reads them at every close.
_SECTIONS_OF = (
    select(SectionScoreRow.score_id, *_SECTION_COLUMNS)
    .where(SectionScoreRow.score_id.in_(bindparam("score_ids", expanding=True)))
    .order_by(SectionScoreRow.section)
)
_LATEST = (
    select(ScoreVersion.__table__)
    .where(ScoreVersion.session_id == bindparam("session_id"))
    .order_by(ScoreVersion.version.desc())
    .limit(1)
)


def _version_records(s: Session, rows: Sequence[ScoreVersion | Row[Any]]) -> list[ScoreVersionRecord]:
    """Score versions (ORM objects or plain rows of score_versions) with their sections, in one more read."""
    ids = [r.score_id for r in rows]
    sections: dict[str, list[SectionFigures]] = {i: [] for i in ids}
    if ids:
        for score_id, *figures in s.execute(_SECTIONS_OF, {"score_ids": ids}):
            sections[score_id].append(SectionFigures(*figures))
    return [
        ScoreVersionRecord(
            score_id=r.score_id,
            session_id=r.session_id,
            version=r.version,
            status=r.status,
            reason=r.reason,
            blueprint_version=r.blueprint_version,
            cut_table_version=r.cut_table_version,
            total=TotalFigures(
                band=r.total_band,
                cefr=r.total_cefr or "",
                comparable_low=r.comparable_low or 0,
                comparable_high=r.comparable_high or 0,
                comparable_midpoint=r.comparable_midpoint or 0,
            )
            if r.total_band
            else None,
            sections=tuple(sections[r.score_id]),
            create_ms=r.create_ms,
        )
        for r in rows
    ]


def _latest(s: Session, session_id: str) -> ScoreVersionRecord | None:
    row = s.execute(_LATEST, {"session_id": session_id}).first()
    return _version_records(s, [row])[0] if row is not None else None


def _version_values(record: ScoreVersionRecord) -> dict[str, Any]:
    total = record.total
    return {
        "score_id": record.score_id,
        "session_id": record.session_id,
        "version": record.version,
        "status": record.status,
        "reason": record.reason,
        "blueprint_version": record.blueprint_version,
        "cut_table_version": record.cut_table_version,
        "total_band": total.band if total else None,
        "total_cefr": total.cefr if total else None,
        "comparable_low": total.comparable_low if total else None,
        "comparable_high": total.comparable_high if total else None,
        "comparable_midpoint": total.comparable_midpoint if total else None,
        "create_ms": record.create_ms,
    }


def _insert_versions(s: Session, versions: Sequence[ScoreVersionRecord]) -> None:
    """New score versions and their section rows as two plain INSERTs (no ORM objects to flush)."""
    if not versions:
        return
    # On the Core connection: the ORM's bulk INSERT path costs more per row, and there are no objects to track.
    # vars(), not dataclasses.asdict(): the figures are flat, and asdict deep-copies every value.
    connection = s.connection()
    connection.execute(insert(ScoreVersion), [_version_values(v) for v in versions])
    connection.execute(
        insert(SectionScoreRow), [{"score_id": v.score_id, **vars(f)} for v in versions for f in v.sections]
    )


def _rating_task_rows(
    session_id: str, inputs: Mapping[str, SectionInputs], scorer: Scorer, now_ms: int
) -> list[dict[str, Any]]:
    """The rating tasks the rated responses of these sections get, as rows to insert."""
    return [
        {
            "response_id": task.response_id,
            "session_id": session_id,
            "section": section_inputs.section,
            "item_id": task.item_id,
            "task_type": task.task_type,
            "double_rated": task.double_rated,
            "state": TASK_AWAITING,
            "final_score": None,
            "rule": "",
            "submit_ms": task.submit_ms,
            "create_ms": now_ms,
        }
        for section_inputs in inputs.values()
        for task in scorer.rating_tasks(section_inputs)
    ]


def score_closed_sections(s: Session, *, session_id: str, scorer: Scorer, now_ms: int) -> None:
    """Score every section that closed and has no score yet, in the caller's transaction (atomic with the close).

    Rated responses of those sections become rating tasks; their sections stay provisional until rated.
    """
    s.flush()
    session = _scored_sessions(s, [session_id]).get(session_id)
    if session is None:
        return
    closed = _closed_sections(s, session)
    if not closed:
        # Most advances close no section (router to second stage): no need to read the score versions.
        return
    previous = _latest(s, session_id)
    newly_closed = sections_to_score(closed, previous)
    if not newly_closed:
        return
    inputs = _section_inputs(s, session_id, newly_closed)
    tasks = _rating_task_rows(session_id, inputs, scorer, now_ms)
    version = candidate_version(
        session=session,
        previous=previous,
        recompute=inputs,
        scorer=scorer,
        reason="section_closed",
        now_ms=now_ms,
    )
    if tasks:
        s.execute(insert(RatingTask), tasks)
    _insert_versions(s, [version])


def score_documents(s: Session, session_id: str) -> list[dict[str, Any]]:
    """A session's score versions, oldest first, JSON-ready (the student's data export)."""
    rows = s.scalars(
        select(ScoreVersion).where(ScoreVersion.session_id == session_id).order_by(ScoreVersion.version)
    ).all()
    return [dataclasses.asdict(record) for record in _version_records(s, rows)]


def latest_version(db: Database, *, session_id: str) -> ScoreVersionRecord | None:
    with db.reading() as s:
        return _latest(s, session_id)


def list_versions(db: Database, *, session_id: str) -> list[ScoreVersionRecord]:
    """Newest first."""
    with db.reading() as s:
        rows = s.scalars(
            select(ScoreVersion).where(ScoreVersion.session_id == session_id).order_by(ScoreVersion.version.desc())
        ).all()
        return _version_records(s, rows)


# ---- rescoring: a batch of sessions, read in a few transactions, planned on readers, written in one


def find_rescore(db: Database, *, session_id: str, request_id: str) -> bytes | None:
    with db.reading() as s:
        row = s.get(RescoreRequest, (session_id, request_id))
        return row.result if row is not None else None


@dataclass(frozen=True)
class RescoreTarget:
    """What the first read of a rescore found for one session: a stored outcome, a refusal, or neither."""

    session_id: str
    # The outcome stored under the request id: the rescore was done, and is answered again unchanged.
    replay: bytes | None = None
    error: DomainError | None = None


@dataclass(frozen=True)
class RescoreTargets:
    by_session: Mapping[str, RescoreTarget]
    # Every item seen by the sessions to rescore (not replayed, not refused), to read at its current revision.
    item_ids: tuple[str, ...]


def rescore_targets(db: Database, *, requests: Sequence[tuple[str, str | None]]) -> RescoreTargets:
    """For (session id, request id or None) pairs with distinct session ids, in one read: the outcome stored
    under the request id, else NOT_FOUND or FAILED_PRECONDITION; and the items the others saw."""
    session_ids = [session_id for session_id, _ in requests]
    keyed = [(session_id, request_id) for session_id, request_id in requests if request_id]
    replays: dict[str, bytes] = {}
    item_ids: list[str] = []
    with db.reading() as s:
        if keyed:
            for session_id, result in s.execute(
                select(RescoreRequest.session_id, RescoreRequest.result).where(
                    tuple_(RescoreRequest.session_id, RescoreRequest.request_id).in_(keyed)
                )
            ):
                replays[session_id] = result
        states: dict[str, str] = {
            session_id: state
            for session_id, state in s.execute(
                select(ExamSession.session_id, ExamSession.state).where(ExamSession.session_id.in_(session_ids))
            )
        }
        finished = [sid for sid in session_ids if sid not in replays and states.get(sid) == STATE_FINISHED]
        if finished:
            item_ids = list(
                s.scalars(
                    select(ModuleItem.item_id)
                    .distinct()
                    .join(Module, Module.module_id == ModuleItem.module_id)
                    .where(Module.session_id.in_(finished))
                    .order_by(ModuleItem.item_id)
                )
            )
    targets: dict[str, RescoreTarget] = {}
    for session_id in session_ids:
        if session_id in replays:
            targets[session_id] = RescoreTarget(session_id, replay=replays[session_id])
        elif session_id not in states:
            targets[session_id] = RescoreTarget(session_id, error=NotFound(f"session {session_id} not found"))
        elif states[session_id] != STATE_FINISHED:
            refusal = FailedPrecondition(
                f"session {session_id} is not finished; only finished sessions are rescored"
            )
            targets[session_id] = RescoreTarget(session_id, error=refusal)
        else:
            targets[session_id] = RescoreTarget(session_id)
    return RescoreTargets(by_session=targets, item_ids=tuple(item_ids))


def _latest_versions(s: Session, session_ids: Collection[str]) -> dict[str, ScoreVersionRecord]:
    """_latest of many sessions in two statements."""
    newest = (
        select(ScoreVersion.session_id, func.max(ScoreVersion.version).label("version"))
        .where(ScoreVersion.session_id.in_(session_ids))
        .group_by(ScoreVersion.session_id)
        .subquery()
    )
    rows = s.execute(
        select(ScoreVersion.__table__).join(
            newest, and_(ScoreVersion.session_id == newest.c.session_id, ScoreVersion.version == newest.c.version)
        )
    ).all()
    return {record.session_id: record for record in _version_records(s, rows)}


def _closed_sections_of_finished(s: Session, session_ids: Collection[str]) -> dict[str, set[str]]:
    """_closed_sections of many finished sessions in one statement."""
    modules: dict[str, list[ModuleState]] = {session_id: [] for session_id in session_ids}
    for session_id, *state in s.execute(
        select(Module.session_id, Module.section, Module.stage, Module.status).where(
            Module.session_id.in_(session_ids)
        )
    ):
        modules[session_id].append(ModuleState(*state))
    return {session_id: closed_sections(found, finished=True) for session_id, found in modules.items()}


def read_rescore_inputs(db: Database, *, session_ids: Sequence[str]) -> dict[str, RescoreInputs | DomainError]:
    """Every scored section's inputs of each session, in one read; a session that is gone or not finished gets
    its error instead."""
    found: dict[str, RescoreInputs | DomainError] = {}
    with db.reading() as s:
        sessions = _scored_sessions(s, session_ids)
        finished = [sid for sid in session_ids if sid in sessions and sessions[sid].state == STATE_FINISHED]
        latest = _latest_versions(s, finished)
        closed = _closed_sections_of_finished(s, finished)
        inputs = _section_inputs_of(s, closed)
        for session_id in session_ids:
            session = sessions.get(session_id)
            if session is None:
                found[session_id] = NotFound(f"session {session_id} not found")
            elif session.state != STATE_FINISHED:
                found[session_id] = FailedPrecondition(
                    f"session {session_id} is not finished; only finished sessions are rescored"
                )
            else:
                found[session_id] = RescoreInputs(
                    session=session,
                    previous=latest.get(session_id),
                    sections=inputs[session_id],
                )
    return found


@dataclass(frozen=True)
class RescoreWrite:
    session_id: str
    plan: RescorePlan
    # With a request id the outcome is kept, so that a retry gets the same answer without acting again.
    request_id: str | None


def _apply_rescores(s: Session, writes: Sequence[RescoreWrite], now_ms: int) -> list[bytes | DomainError | None]:
    session_ids = [w.session_id for w in writes]
    keyed = [(w.session_id, w.request_id) for w in writes if w.request_id]
    stored: dict[str, bytes] = {}
    if keyed:
        for session_id, result in s.execute(
            select(RescoreRequest.session_id, RescoreRequest.result).where(
                tuple_(RescoreRequest.session_id, RescoreRequest.request_id).in_(keyed)
            )
        ):
            stored[session_id] = result
    present = set(s.scalars(select(ExamSession.session_id).where(ExamSession.session_id.in_(session_ids))))
    latest: dict[str, int] = {
        session_id: int(version or 0)
        for session_id, version in s.execute(
            select(ScoreVersion.session_id, func.max(ScoreVersion.version))
            .where(ScoreVersion.session_id.in_(session_ids))
            .group_by(ScoreVersion.session_id)
        )
    }
    outcomes: list[bytes | DomainError | None] = []
    versions: list[ScoreVersionRecord] = []
    kept: list[dict[str, Any]] = []
    for write in writes:
        if write.request_id and write.session_id in stored:
            outcomes.append(stored[write.session_id])
        elif write.session_id not in present:
            outcomes.append(NotFound(f"session {write.session_id} not found"))
        elif latest.get(write.session_id, 0) != write.plan.base_version:
            outcomes.append(None)
        else:
            if write.plan.new_version is not None:
                versions.append(write.plan.new_version)
            if write.request_id:
                kept.append(
                    {
                        "session_id": write.session_id,
                        "request_id": write.request_id,
                        "result": write.plan.result,
                        "applied_ms": now_ms,
                    }
                )
            outcomes.append(write.plan.result)
    _insert_versions(s, versions)
    if kept:
        s.execute(insert(RescoreRequest), kept)
    return outcomes


def _apply_one(db: Database, write: RescoreWrite, now_ms: int) -> bytes | DomainError | None:
    try:
        with db.writing() as s:
            return _apply_rescores(s, [write], now_ms)[0]
    except IntegrityError:
        if write.request_id:
            stored = find_rescore(db, session_id=write.session_id, request_id=write.request_id)
            if stored is not None:
                return stored
        raise


def apply_rescores(
    db: Database, *, writes: Sequence[RescoreWrite], now_ms: int
) -> list[bytes | DomainError | None]:
    """Write plans of distinct sessions in one transaction (one commit), each with its own version check.

    Per write, in order: its encoded outcome (the one stored under its request id if that was applied before);
    NOT_FOUND when the session is gone; or None, writing nothing for it, when the session's latest score version
    is no longer the one its plan was computed from (the caller computes that one again).
    """
    if len({w.session_id for w in writes}) != len(writes):
        raise ValueError("apply_rescores takes one write per session")
    if not writes:
        return []
    try:
        with db.writing() as s:
            return _apply_rescores(s, writes, now_ms)
    except IntegrityError:
        # Another process (PostgreSQL) stored one of these request ids or versions between our check and our
        # insert, and the whole transaction rolled back: each on its own now, so only the raced one replays.
        return [_apply_one(db, write, now_ms) for write in writes]


# ---- ratings


def list_rating_tasks(
    db: Database, *, rater_id: str, task_type: str | None, after: tuple[int, int] | None, limit: int
) -> list[RatingTaskRecord]:
    """Open tasks the rater has not rated, oldest response first; `after` is the (submit_ms, id) last seen."""
    with db.reading() as s:
        rated_by_me = select(RatingRow.response_id).where(RatingRow.rater_id == rater_id)
        query = (
            select(
                RatingTask.response_id,
                RatingTask.task_type,
                RatingTask.item_id,
                RatingTask.state,
                RatingTask.submit_ms,
                PinnedContent.body,
                Response.answer_json,
            )
            .join(Response, Response.response_id == RatingTask.response_id)
            .join(
                ModuleItem,
                and_(ModuleItem.module_id == Response.module_id, ModuleItem.item_id == Response.item_id),
            )
            .join(PinnedContent, PinnedContent.digest == ModuleItem.content_digest)
            .where(RatingTask.state != TASK_FINAL, RatingTask.response_id.not_in(rated_by_me))
        )
        if task_type is not None:
            query = query.where(RatingTask.task_type == task_type)
        if after is not None:
            submit_ms, response_id = after
            query = query.where(tuple_(RatingTask.submit_ms, RatingTask.response_id) > (submit_ms, response_id))
        rows = s.execute(query.order_by(RatingTask.submit_ms, RatingTask.response_id).limit(limit)).all()
        return [RatingTaskRecord(*row) for row in rows]


def _rating_outcome(task: RatingTask, rating_id: str) -> RatingOutcome:
    return RatingOutcome(
        rating_id=rating_id,
        response_id=task.response_id,
        state=task.state,
        final_score=task.final_score,
        rule=task.rule,
    )


def _replayed_rating(s: Session, rater_id: str, request_id: str) -> RatingOutcome | None:
    found = s.scalars(
        select(RatingRow).where(RatingRow.rater_id == rater_id, RatingRow.request_id == request_id)
    ).first()
    if found is None:
        return None
    task = s.get(RatingTask, found.response_id)
    assert task is not None
    return _rating_outcome(task, found.rating_id)


def submit_rating(
    db: Database,
    *,
    response_id: int,
    rater_id: str,
    score: int,
    dimension_scores_json: str,
    comment: str,
    request_id: str | None,
    rating_id: str,
    scorer: Scorer,
    now_ms: int,
) -> RatingOutcome:
    """Store a rating and resolve the response (toefl_core.rating.resolve); a final one re-scores its section."""
    try:
        with db.writing() as s:
            if request_id:
                replay = _replayed_rating(s, rater_id, request_id)
                if replay is not None:
                    return replay
            task = s.get(RatingTask, response_id)
            if task is None:
                raise NotFound(f"rating task {response_id} not found")
            existing = list(
                s.scalars(
                    select(RatingRow)
                    .where(RatingRow.response_id == response_id)
                    .order_by(RatingRow.create_ms, RatingRow.rating_id)
                )
            )
            if any(r.rater_id == rater_id for r in existing):
                raise AlreadyExists(
                    f"you have already rated response {response_id}; a rater rates a response once"
                )
            if task.state == TASK_FINAL:
                raise FailedPrecondition(f"response {response_id} already has its final rating")
            adjudication = task.state == TASK_ADJUDICATION
            s.add(
                RatingRow(
                    rating_id=rating_id,
                    response_id=response_id,
                    rater_id=rater_id,
                    score=score,
                    dimension_scores_json=dimension_scores_json,
                    comment=comment,
                    adjudication=adjudication,
                    request_id=request_id,
                    create_ms=now_ms,
                )
            )
            ratings = [Rating(r.rater_id, r.score, r.adjudication) for r in existing]
            ratings.append(Rating(rater_id, score, adjudication))
            resolution = resolve(ratings, second_rating_required=task.double_rated)
            task.state = _TASK_STATE[resolution.status]
            task.rule = resolution.rule
            if resolution.status == RatingStatus.FINAL:
                task.final_score = resolution.final_score
                task.final_ms = now_ms
                s.flush()
                session = _scored_sessions(s, [task.session_id]).get(task.session_id)
                assert session is not None
                previous = _latest(s, task.session_id)
                candidate = candidate_version(
                    session=session,
                    previous=previous,
                    recompute=_section_inputs(s, task.session_id, [task.section]),
                    scorer=scorer,
                    reason="rating",
                    now_ms=now_ms,
                )
                _insert_versions(s, [candidate])
            return _rating_outcome(task, rating_id)
    except IntegrityError:
        if request_id:
            with db.reading() as s:
                replay = _replayed_rating(s, rater_id, request_id)
            if replay is not None:
                return replay
        raise AlreadyExists(
            f"you have already rated response {response_id}; a rater rates a response once"
        ) from None


def rating_pairs(db: Database) -> list[RatingPair]:
    """Every regular (not adjudication) rating, for agreement statistics."""
    with db.reading() as s:
        rows = s.execute(
            select(RatingRow.response_id, RatingRow.rater_id, RatingRow.score)
            .where(RatingRow.adjudication.is_(False))
            .order_by(RatingRow.response_id, RatingRow.create_ms)
        ).all()
        return [RatingPair(*row) for row in rows]


# ---- scoring jobs


def list_finished_sessions(
    db: Database,
    *,
    finished_after_ms: int | None,
    blueprint_version: str | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[tuple[int, str]]:
    """(finish_ms, session_id) of finished sessions, oldest first; `after` is the last pair seen."""
    with db.reading() as s:
        query = select(ExamSession.finish_ms, ExamSession.session_id).where(ExamSession.state == STATE_FINISHED)
        if finished_after_ms is not None:
            query = query.where(ExamSession.finish_ms >= finished_after_ms)
        if blueprint_version is not None:
            query = query.where(ExamSession.blueprint_version == blueprint_version)
        if after is not None:
            finish_ms, session_id = after
            query = query.where(tuple_(ExamSession.finish_ms, ExamSession.session_id) > (finish_ms, session_id))
        rows = s.execute(query.order_by(ExamSession.finish_ms, ExamSession.session_id).limit(limit)).all()
        return [(int(f or 0), str(i)) for f, i in rows]


def export_inputs(db: Database, *, session_ids: Sequence[str]) -> list[SessionExport]:
    with db.reading() as s:
        sessions = {
            r.session_id: r for r in s.scalars(select(ExamSession).where(ExamSession.session_id.in_(session_ids)))
        }
        # Every section of every found session in one batched read, as a rescore batch reads them.
        inputs = _section_inputs_of(s, {sid: None for sid in session_ids if sid in sessions})
        return [
            SessionExport(
                session_id=sid,
                finish_ms=sessions[sid].finish_ms or 0,
                sections=tuple(inputs[sid].values()),
            )
            for sid in session_ids
            if sid in sessions
        ]


# ---- reports


@dataclass(frozen=True)
class RosterRow:
    student_id: str
    display_name: str
    latest: ScoreVersionRecord | None
    in_progress: int
    finished: int


def class_roster(db: Database, *, class_id: str) -> list[RosterRow]:
    with db.reading() as s:
        students = s.execute(
            select(User.user_id, User.display_name)
            .join(Enrolment, Enrolment.student_id == User.user_id)
            .where(Enrolment.class_id == class_id)
            .order_by(User.display_name, User.user_id)
        ).all()
        rows = []
        for student_id, display_name in students:
            counts = dict(
                s.execute(
                    select(ExamSession.state, func.count())
                    .where(ExamSession.student_id == student_id)
                    .group_by(ExamSession.state)
                ).all()
            )
            latest_row = s.scalars(
                select(ScoreVersion)
                .join(ExamSession, ExamSession.session_id == ScoreVersion.session_id)
                .where(ExamSession.student_id == student_id)
                .order_by(ExamSession.create_ms.desc(), ScoreVersion.version.desc())
                .limit(1)
            ).first()
            rows.append(
                RosterRow(
                    student_id=student_id,
                    display_name=display_name,
                    latest=_version_records(s, [latest_row])[0] if latest_row is not None else None,
                    in_progress=sum(n for state, n in counts.items() if state != STATE_FINISHED),
                    finished=counts.get(STATE_FINISHED, 0),
                )
            )
        return rows


def class_teacher(db: Database, *, class_id: str) -> tuple[str, str] | None:
    """(teacher id, class name)."""
    with db.reading() as s:
        row = s.get(SchoolClass, class_id)
        return (row.teacher_id, row.name) if row is not None else None


@dataclass(frozen=True)
class AnalyticsData:
    # Days since the epoch (UTC) -> sessions.
    started: Mapping[int, int]
    finished: Mapping[int, int]
    # (section, band) -> sessions, from the latest version of each session.
    bands: Mapping[tuple[str, str], int]
    # task type -> (responses, total elapsed ms).
    task_times: Mapping[str, tuple[int, int]]
    # (section, stage) -> modules.
    routing: Mapping[tuple[str, str], int]


DAY_MS = 86_400_000


def analytics(db: Database, *, start_ms: int, end_ms: int) -> AnalyticsData:
    """Over the sessions created in [start_ms, end_ms) (finishes counted by their own time); days are UTC."""
    with db.reading() as s:
        started_day = ExamSession.create_ms // DAY_MS
        finished_day = ExamSession.finish_ms // DAY_MS
        started: dict[int, int] = {
            int(day): int(n)
            for day, n in s.execute(
                select(started_day, func.count())
                .where(ExamSession.create_ms >= start_ms, ExamSession.create_ms < end_ms)
                .group_by(started_day)
            )
        }
        finished: dict[int, int] = {
            int(day or 0): int(n)
            for day, n in s.execute(
                select(finished_day, func.count())
                .where(ExamSession.finish_ms >= start_ms, ExamSession.finish_ms < end_ms)
                .group_by(finished_day)
            )
        }
        in_range = select(ExamSession.session_id).where(
            ExamSession.create_ms >= start_ms, ExamSession.create_ms < end_ms
        )
        newest = (
            select(ScoreVersion.session_id, func.max(ScoreVersion.version).label("version"))
            .where(ScoreVersion.session_id.in_(in_range))
            .group_by(ScoreVersion.session_id)
            .subquery()
        )
        bands = {
            (section, band): n
            for section, band, n in s.execute(
                select(SectionScoreRow.section, SectionScoreRow.band, func.count())
                .join(ScoreVersion, ScoreVersion.score_id == SectionScoreRow.score_id)
                .join(
                    newest,
                    and_(ScoreVersion.session_id == newest.c.session_id, ScoreVersion.version == newest.c.version),
                )
                .group_by(SectionScoreRow.section, SectionScoreRow.band)
            )
        }
        latest = (
            select(Response.module_id, Response.item_id, func.max(Response.revision).label("revision"))
            .where(Response.session_id.in_(in_range))
            .group_by(Response.module_id, Response.item_id)
            .subquery()
        )
        task_times = {
            task_type: (int(n), int(total or 0))
            for task_type, n, total in s.execute(
                select(ModuleItem.task_type, func.count(), func.sum(Response.elapsed_ms))
                .join(
                    latest,
                    and_(
                        Response.module_id == latest.c.module_id,
                        Response.item_id == latest.c.item_id,
                        Response.revision == latest.c.revision,
                    ),
                )
                .join(
                    ModuleItem,
                    and_(ModuleItem.module_id == Response.module_id, ModuleItem.item_id == Response.item_id),
                )
                .group_by(ModuleItem.task_type)
            )
        }
        routing = {
            (section, stage): n
            for section, stage, n in s.execute(
                select(Module.section, Module.stage, func.count())
                .where(Module.session_id.in_(in_range), Module.stage != STAGE_ROUTER)
                .group_by(Module.section, Module.stage)
            )
        }
        return AnalyticsData(
            started=started,
            finished=finished,
            bands=bands,
            task_times=task_times,
            routing=routing,
        )


def delete_session_scores(s: Session, session_ids: Collection[str]) -> None:
    """Erasure: the scores, ratings and rating tasks of these sessions (before their responses go)."""
    tasks = select(RatingTask.response_id).where(RatingTask.session_id.in_(session_ids))
    s.execute(delete(RatingRow).where(RatingRow.response_id.in_(tasks)))
    s.execute(delete(RatingTask).where(RatingTask.session_id.in_(session_ids)))
    versions = select(ScoreVersion.score_id).where(ScoreVersion.session_id.in_(session_ids))
    s.execute(delete(SectionScoreRow).where(SectionScoreRow.score_id.in_(versions)))
    s.execute(delete(ScoreVersion).where(ScoreVersion.session_id.in_(session_ids)))
    s.execute(delete(RescoreRequest).where(RescoreRequest.session_id.in_(session_ids)))
