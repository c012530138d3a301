"""Storage of scores, rating tasks and ratings: what a score is computed from, score versions, ratings and the
reads and writes of a rescore batch (on the Core connection)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, and_, bindparam, delete, func, insert, select, tuple_, update

from session_service.domain.scores import (
    AnswerRow,
    ModuleState,
    NewRatingTask,
    RatingOutcome,
    RatingTaskRecord,
    RescoreInputs,
    RescorePlan,
    ScoredSession,
    ScoreVersionRecord,
    ScoringItem,
    SectionFigures,
    SectionInputs,
    TotalFigures,
    closed_sections,
)
from session_service.domain.states import STATE_FINISHED, TASK_AWAITING, TASK_FINAL
from session_service.storage import audit, content
from session_service.storage.audit import AuditRecord
from session_service.storage.engine import Conflict, Database, Tx, Upsert
from session_service.storage.models import (
    ExamSession,
    Module,
    ModuleItem,
    PendingScore,
    PinnedContent,
    RatingRow,
    RatingTask,
    RescoreRequest,
    Response,
    ScoreVersion,
    SectionScoreRow,
)
from toefl_core.errors import DomainError, FailedPrecondition, NotFound
from toefl_core.rating import Rating

# ---- reading what a score is computed from


def section_inputs(
    conn: Connection, *, session_id: str, sections: Collection[str] | None = None
) -> dict[str, SectionInputs]:
    """Per section (all, or those named): the pinned items in presentation order, latest answers, final ratings."""
    return section_inputs_of(conn, {session_id: sections})[session_id]


# The statements of section_inputs_of, built once: every section close runs them.
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
# Every rating task of the sessions, the final ones kept in Python: a session has a few, and a condition on the
# state led SQLite to the state index, through every final rating task of every session.
_FINAL_RATINGS = select(RatingTask.response_id, RatingTask.final_score, RatingTask.state).where(
    RatingTask.session_id.in_(bindparam("session_ids", expanding=True))
)
# The same, of the named sections only: a section's close reads its own dozen items and answers, not the whole
# test's (a Writing close read every Reading and Listening answer to drop them).
_IN_SECTIONS = Module.section.in_(bindparam("sections", expanding=True))
_PINNED_IN_SECTIONS = _PINNED.where(_IN_SECTIONS)
_ANSWERS_IN_SECTIONS = _ANSWERS.join(Module, Module.module_id == Response.module_id).where(_IN_SECTIONS)
_FINAL_RATINGS_IN_SECTIONS = _FINAL_RATINGS.where(RatingTask.section.in_(bindparam("sections", expanding=True)))


def section_inputs_of(
    connection: Connection, wanted: Mapping[str, Collection[str] | None]
) -> dict[str, dict[str, SectionInputs]]:
    """_section_inputs of many sessions (each: all sections, or those named) in four statements in all, so a
    batch of rescores does not pay several round trips per session."""
    session_ids = list(wanted)
    named = [sections for sections in wanted.values() if sections is not None]
    params: dict[str, list[str]] = {"session_ids": session_ids}
    statements = (_PINNED, _ANSWERS, _FINAL_RATINGS)
    if len(named) == len(session_ids):
        # Every session's sections named: only the rows of those sections are read.
        params["sections"] = sorted(set().union(*named))
        statements = (_PINNED_IN_SECTIONS, _ANSWERS_IN_SECTIONS, _FINAL_RATINGS_IN_SECTIONS)
    pinned_of, answers_of, final_ratings_of = statements
    # Tens of thousands of rows for a batch: read all at once (fetchall, not a fetchone per row).
    pinned: list[tuple[str, str, str, int, str, str]] = []
    for row in connection.execute(pinned_of, params).all():
        sid, section, item_id, revision, task_type, digest = row
        keep = wanted[sid]
        if keep is None or section in keep:
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
        answers_of, params
    ).all():
        key = (module_id, item_id)
        if newest.get(key, -1) < revision:
            newest[key] = revision
            answers[sid][item_id] = AnswerRow(response_id, answer_json, elapsed_ms, saved_ms)
    finals: dict[int, int] = {
        response_id: score
        for response_id, score, state in connection.execute(final_ratings_of, params)
        if state == TASK_FINAL and score is not None
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


def scored_sessions(conn: Connection, *, session_ids: Collection[str]) -> dict[str, ScoredSession]:
    rows = conn.execute(_SCORED_SESSIONS, {"session_ids": list(session_ids)})
    return {row.session_id: ScoredSession(*row) for row in rows}


# In the order the student met them: a session's sections are scored in that order.
_MODULE_STATES = (
    select(Module.section, Module.stage, Module.status)
    .where(Module.session_id == bindparam("session_id"))
    .order_by(Module.sequence)
)


def module_states(conn: Connection, *, session_id: str) -> list[ModuleState]:
    """Where each module of the session stands (section, stage, status), in the order of the modules."""
    return [ModuleState(*row) for row in conn.execute(_MODULE_STATES, {"session_id": session_id})]


# ---- sessions whose closed sections wait for their score

# A session marked already (a second section closed before the first was scored) keeps its first mark.
_MARK_PENDING = Upsert(lambda insert: insert(PendingScore).on_conflict_do_nothing(index_elements=["session_id"]))
_CLEAR_PENDING = delete(PendingScore).where(PendingScore.session_id.in_(bindparam("session_ids", expanding=True)))


def mark_pending(tx: Tx, *, session_id: str, now_ms: int) -> None:
    """Note, in the transaction that closes a section, that the session has one to score."""
    tx.execute(_MARK_PENDING(tx), {"session_id": session_id, "since_ms": now_ms})


def clear_pending(tx: Tx, *, session_ids: Collection[str]) -> None:
    """In the transaction that scores them: nothing of these sessions waits any more."""
    tx.execute(_CLEAR_PENDING, {"session_ids": list(session_ids)})


def pending_session_ids(db: Database) -> list[str]:
    """The sessions marked, oldest mark first."""
    with db.read_statement() as conn:
        return list(conn.scalars(select(PendingScore.session_id).order_by(PendingScore.since_ms)).all())


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


def version_records(conn: Connection, rows: Sequence[Row[Any]]) -> list[ScoreVersionRecord]:
    """Score versions (rows of score_versions) with their sections, in one more read."""
    ids = [r.score_id for r in rows]
    sections: dict[str, list[SectionFigures]] = {i: [] for i in ids}
    if ids:
        for score_id, *figures in conn.execute(_SECTIONS_OF, {"score_ids": ids}):
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


def latest(conn: Connection, *, session_id: str) -> ScoreVersionRecord | None:
    """The session's newest score version."""
    row = conn.execute(_LATEST, {"session_id": session_id}).first()
    return version_records(conn, [row])[0] if row is not None else None


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


def insert_versions(tx: Tx, *, versions: Sequence[ScoreVersionRecord]) -> None:
    """New score versions and their section rows, as two multi-row INSERTs."""
    if not versions:
        return
    tx.execute(insert(ScoreVersion), [_version_values(v) for v in versions])
    tx.execute(
        insert(SectionScoreRow), [{"score_id": v.score_id, **vars(f)} for v in versions for f in v.sections]
    )


def insert_rating_tasks(
    tx: Tx, *, session_id: str, section: str, tasks: Sequence[NewRatingTask], now_ms: int
) -> None:
    """The rating tasks of a section's rated responses, awaiting their first rating."""
    if not tasks:
        return
    tx.execute(
        insert(RatingTask),
        [
            {
                "response_id": task.response_id,
                "session_id": session_id,
                "section": section,
                "item_id": task.item_id,
                "task_type": task.task_type,
                "double_rated": task.double_rated,
                "state": TASK_AWAITING,
                "final_score": None,
                "rule": "",
                "submit_ms": task.submit_ms,
                "create_ms": now_ms,
            }
            for task in tasks
        ],
    )


def versions_of(conn: Connection, *, session_id: str, newest_first: bool = True) -> list[ScoreVersionRecord]:
    """Every score version of the session."""
    order = ScoreVersion.version.desc() if newest_first else ScoreVersion.version
    rows = conn.execute(
        select(ScoreVersion.__table__).where(ScoreVersion.session_id == session_id).order_by(order)
    ).all()
    return version_records(conn, rows)


def latest_version(db: Database, *, session_id: str) -> ScoreVersionRecord | None:
    with db.read_transaction() as conn:
        return latest(conn, session_id=session_id)


def list_versions(db: Database, *, session_id: str) -> list[ScoreVersionRecord]:
    """Newest first."""
    with db.read_transaction() as conn:
        return versions_of(conn, session_id=session_id)


# ---- rescoring: a batch of sessions, read in a few transactions, planned on readers, written in one


def find_rescore(db: Database, *, session_id: str, request_id: str) -> bytes | None:
    with db.read_transaction() as conn:
        return conn.scalar(
            select(RescoreRequest.result).where(
                RescoreRequest.session_id == session_id, RescoreRequest.request_id == request_id
            )
        )


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
    with db.read_transaction() as conn:
        if keyed:
            for session_id, result in conn.execute(
                select(RescoreRequest.session_id, RescoreRequest.result).where(
                    tuple_(RescoreRequest.session_id, RescoreRequest.request_id).in_(keyed)
                )
            ):
                replays[session_id] = result
        states: dict[str, str] = {
            session_id: state
            for session_id, state in conn.execute(
                select(ExamSession.session_id, ExamSession.state).where(ExamSession.session_id.in_(session_ids))
            )
        }
        finished = [sid for sid in session_ids if sid not in replays and states.get(sid) == STATE_FINISHED]
        if finished:
            item_ids = list(
                conn.scalars(
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
                f"session {session_id} is not finished; only finished sessions are rescored",
                reason="SESSION_NOT_FINISHED",
            )
            targets[session_id] = RescoreTarget(session_id, error=refusal)
        else:
            targets[session_id] = RescoreTarget(session_id)
    return RescoreTargets(by_session=targets, item_ids=tuple(item_ids))


def _latest_versions(conn: Connection, session_ids: Collection[str]) -> dict[str, ScoreVersionRecord]:
    """_latest of many sessions in two statements."""
    newest = (
        select(ScoreVersion.session_id, func.max(ScoreVersion.version).label("version"))
        .where(ScoreVersion.session_id.in_(session_ids))
        .group_by(ScoreVersion.session_id)
        .subquery()
    )
    rows = conn.execute(
        select(ScoreVersion.__table__).join(
            newest, and_(ScoreVersion.session_id == newest.c.session_id, ScoreVersion.version == newest.c.version)
        )
    ).all()
    return {record.session_id: record for record in version_records(conn, rows)}


def _closed_sections_of_finished(conn: Connection, session_ids: Collection[str]) -> dict[str, set[str]]:
    """The closed sections of many finished sessions (the domain's rule) in one statement."""
    modules: dict[str, list[ModuleState]] = {session_id: [] for session_id in session_ids}
    for session_id, *state in conn.execute(
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
    with db.read_transaction() as conn:
        sessions = scored_sessions(conn, session_ids=session_ids)
        finished = [sid for sid in session_ids if sid in sessions and sessions[sid].state == STATE_FINISHED]
        newest = _latest_versions(conn, finished)
        closed = _closed_sections_of_finished(conn, finished)
        inputs = section_inputs_of(conn, closed)
        for session_id in session_ids:
            session = sessions.get(session_id)
            if session is None:
                found[session_id] = NotFound(f"session {session_id} not found")
            elif session.state != STATE_FINISHED:
                found[session_id] = FailedPrecondition(
                    f"session {session_id} is not finished; only finished sessions are rescored",
                    reason="SESSION_NOT_FINISHED",
                )
            else:
                found[session_id] = RescoreInputs(
                    session=session,
                    previous=newest.get(session_id),
                    sections=inputs[session_id],
                )
    return found


@dataclass(frozen=True)
class RescoreWrite:
    session_id: str
    plan: RescorePlan
    # With a request id the outcome is kept, so that a retry gets the same answer without acting again.
    request_id: str | None
    # A staff member's rescore: its audit entry, appended with the new version (and only then); the session's
    # student is filled in here.
    audit_entry: AuditRecord | None = None


def _apply_rescores(tx: Tx, writes: Sequence[RescoreWrite], now_ms: int) -> list[bytes | DomainError | None]:
    session_ids = [w.session_id for w in writes]
    keyed = [(w.session_id, w.request_id) for w in writes if w.request_id]
    stored: dict[str, bytes] = {}
    if keyed:
        for session_id, result in tx.execute(
            select(RescoreRequest.session_id, RescoreRequest.result).where(
                tuple_(RescoreRequest.session_id, RescoreRequest.request_id).in_(keyed)
            )
        ):
            stored[session_id] = result
    students: dict[str, str] = {
        session_id: student_id
        for session_id, student_id in tx.execute(
            select(ExamSession.session_id, ExamSession.student_id).where(ExamSession.session_id.in_(session_ids))
        )
    }
    latest: dict[str, int] = {
        session_id: int(version or 0)
        for session_id, version in tx.execute(
            select(ScoreVersion.session_id, func.max(ScoreVersion.version))
            .where(ScoreVersion.session_id.in_(session_ids))
            .group_by(ScoreVersion.session_id)
        )
    }
    outcomes: list[bytes | DomainError | None] = []
    versions: list[ScoreVersionRecord] = []
    kept: list[dict[str, Any]] = []
    entries: list[AuditRecord] = []
    for write in writes:
        if write.request_id and write.session_id in stored:
            outcomes.append(stored[write.session_id])
        elif write.session_id not in students:
            outcomes.append(NotFound(f"session {write.session_id} not found"))
        elif latest.get(write.session_id, 0) != write.plan.base_version:
            outcomes.append(None)
        else:
            if write.plan.new_version is not None:
                versions.append(write.plan.new_version)
                if write.audit_entry is not None:
                    entries.append(dataclasses.replace(write.audit_entry, student_id=students[write.session_id]))
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
    insert_versions(tx, versions=versions)
    if kept:
        tx.execute(insert(RescoreRequest), kept)
    for entry in entries:
        audit.append(tx, entry)
    return outcomes


def _apply_one(db: Database, write: RescoreWrite, now_ms: int) -> bytes | DomainError | None:
    try:
        with db.unit_of_work() as tx:
            return _apply_rescores(tx, [write], now_ms)[0]
    except Conflict:
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
        with db.unit_of_work() as tx:
            return _apply_rescores(tx, writes, now_ms)
    except Conflict:
        # Another process (PostgreSQL) stored one of these request ids or versions between our check and our
        # insert, and the whole transaction rolled back: each on its own now, so only the raced one replays.
        return [_apply_one(db, write, now_ms) for write in writes]


# ---- ratings


def list_rating_tasks(
    db: Database, *, rater_id: str, task_type: str | None, after: tuple[int, int] | None, limit: int
) -> list[RatingTaskRecord]:
    """Open tasks the rater has not rated, oldest response first; `after` is the (submit_ms, id) last seen."""
    with db.read_transaction() as conn:
        rated_by_me = select(RatingRow.response_id).where(RatingRow.rater_id == rater_id)
        voided = select(ExamSession.session_id).where(ExamSession.voided_ms.is_not(None))
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
            .where(
                RatingTask.state != TASK_FINAL,
                RatingTask.response_id.not_in(rated_by_me),
                # A voided session's scores are withheld: its answers cost no rater's time.
                RatingTask.session_id.not_in(voided),
            )
        )
        if task_type is not None:
            query = query.where(RatingTask.task_type == task_type)
        if after is not None:
            submit_ms, response_id = after
            query = query.where(tuple_(RatingTask.submit_ms, RatingTask.response_id) > (submit_ms, response_id))
        rows = conn.execute(query.order_by(RatingTask.submit_ms, RatingTask.response_id).limit(limit)).all()
        return [RatingTaskRecord(*row) for row in rows]


class RatingTaskState(NamedTuple):
    """A rating task as a rating changes it."""

    response_id: int
    session_id: str
    section: str
    state: str
    double_rated: bool


_RATING_TASK = select(
    RatingTask.response_id, RatingTask.session_id, RatingTask.section, RatingTask.state, RatingTask.double_rated
).where(RatingTask.response_id == bindparam("response_id"))


def rating_task(tx: Tx, *, response_id: int) -> RatingTaskState | None:
    row = tx.execute(_RATING_TASK, {"response_id": response_id}).first()
    return None if row is None else RatingTaskState(*row)


def ratings_of(tx: Tx, *, response_id: int) -> list[Rating]:
    """The response's ratings so far, oldest first."""
    rows = tx.execute(
        select(RatingRow.rater_id, RatingRow.score, RatingRow.adjudication)
        .where(RatingRow.response_id == response_id)
        .order_by(RatingRow.create_ms, RatingRow.rating_id)
    )
    return [Rating(rater_id, score, adjudication) for rater_id, score, adjudication in rows]


def replayed_rating(conn: Connection, *, rater_id: str, request_id: str) -> RatingOutcome | None:
    """The outcome of a rating stored under this rater's request id, as its task stands now."""
    row = conn.execute(
        select(
            RatingRow.rating_id, RatingTask.response_id, RatingTask.state, RatingTask.final_score, RatingTask.rule
        )
        .join(RatingTask, RatingTask.response_id == RatingRow.response_id)
        .where(RatingRow.rater_id == rater_id, RatingRow.request_id == request_id)
    ).first()
    return None if row is None else RatingOutcome(*row)


def find_rating(db: Database, *, rater_id: str, request_id: str) -> RatingOutcome | None:
    with db.read_transaction() as conn:
        return replayed_rating(conn, rater_id=rater_id, request_id=request_id)


def insert_rating(
    tx: Tx,
    *,
    rating_id: str,
    response_id: int,
    rater_id: str,
    score: int,
    dimension_scores_json: str,
    comment: str,
    adjudication: bool,
    request_id: str | None,
    now_ms: int,
) -> None:
    tx.execute(
        insert(RatingRow),
        {
            "rating_id": rating_id,
            "response_id": response_id,
            "rater_id": rater_id,
            "score": score,
            "dimension_scores_json": dimension_scores_json,
            "comment": comment,
            "adjudication": adjudication,
            "request_id": request_id,
            "create_ms": now_ms,
        },
    )


def update_rating_task(
    tx: Tx, *, response_id: int, state: str, rule: str, final_score: int | None, final_ms: int | None
) -> None:
    values: dict[str, Any] = {"state": state, "rule": rule}
    if final_score is not None:
        values.update(final_score=final_score, final_ms=final_ms)
    tx.execute(update(RatingTask).where(RatingTask.response_id == response_id).values(**values))
