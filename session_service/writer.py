"""The single writer's units of work: each runs one transaction on the writer thread, applying the domain's rules
to storage reads and writes, so that a rule and the write it governs commit together or not at all."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from session_service.domain.accommodations import STANDARD, Accommodation
from session_service.domain.answers import answer_refusal, late_answer_error, too_late
from session_service.domain.limits import check_daily_sessions, utc_day_start_ms
from session_service.domain.modules import Closing, closing
from session_service.domain.outages import Outage, outage_before
from session_service.domain.proctoring import paused_error, voided_error
from session_service.domain.ratings import already_rated, decide_rating
from session_service.domain.scores import (
    RatingOutcome,
    Scorer,
    candidate_version,
    closed_sections,
    sections_to_score,
)
from session_service.domain.sittings import start_refusal
from session_service.domain.states import STATE_FINISHED, STATE_IN_PROGRESS, STATUS_OPEN
from session_service.storage import answers, outages, scores, sessions
from session_service.storage.answers import ResponseRecord, Submission, SubmitOutcome
from session_service.storage.engine import Conflict, Database, Tx, savepoint
from session_service.storage.sessions import ModuleLeft, NewModule, RouterScore, SessionRecord
from session_service.storage.sittings import SittingRecord
from toefl_core.errors import Aborted, DomainError, FailedPrecondition, NotFound

log = logging.getLogger(__name__)

# ---- a section's score when it closes


def score_closed_sections(tx: Tx, *, session_id: str, scorer: Scorer, now_ms: int) -> None:
    """Score every section that closed and has no score yet, in the caller's transaction.

    One score version per section, in the order the student met them: a section an advance or a finish closed is
    scored at the writer's next idle turn (`score_sessions`), sooner when a read asks for it, and the session's
    history is the same whichever did it. Rated responses of those sections become rating tasks; their sections
    stay provisional until rated.
    """
    session = scores.scored_sessions(tx, session_ids=[session_id]).get(session_id)
    if session is None:
        return
    modules = scores.module_states(tx, session_id=session_id)
    closed = closed_sections(modules, finished=session.state == STATE_FINISHED)
    if not closed:
        # Most advances close no section (router to second stage): no score version to read.
        return
    previous = scores.latest(tx, session_id=session_id)
    newly_closed = sections_to_score(closed, previous)
    if not newly_closed:
        return
    # One read for every section to score (a finish often scores two: Speaking and a Writing still queued).
    inputs = scores.section_inputs(tx, session_id=session_id, sections=newly_closed)
    for section in (s for s in dict.fromkeys(m.section for m in modules) if s in newly_closed):
        recompute = {section: inputs[section]} if section in inputs else {}
        for one in recompute.values():
            scores.insert_rating_tasks(
                tx, session_id=session_id, section=one.section, tasks=scorer.rating_tasks(one), now_ms=now_ms
            )
        version = candidate_version(
            session=session,
            previous=previous,
            recompute=recompute,
            scorer=scorer,
            reason="section_closed",
            now_ms=now_ms,
        )
        scores.insert_versions(tx, versions=[version])
        # The estimate after the section's last module, kept with that module (the router's is kept as it routes):
        # the per-module record of ability and its error that psychometricians audit.
        for figures in version.sections:
            if figures.section == section:
                sessions.record_estimate(
                    tx, session_id=session_id, section=section, theta=figures.theta, se=figures.standard_error
                )
        previous = version


def score_sessions(db: Database, *, session_ids: Sequence[str], scorer: Scorer, now_ms: int) -> None:
    """The sections advances and finishes closed in these sessions, scored in one transaction (each session locked
    first, in the order of their ids, as an advance group locks them), their marks cleared. Should it fail as a
    whole, each session is scored alone, so that one session's fault leaves the others scored; a session that
    fails alone keeps its mark, which the next start takes up again (logged)."""
    try:
        with db.unit_of_work() as tx:
            for session_id in sorted(session_ids):
                sessions.lock_session(tx, session_id=session_id)
                score_closed_sections(tx, session_id=session_id, scorer=scorer, now_ms=now_ms)
            scores.clear_pending(tx, session_ids=session_ids)
        return
    except Exception:
        if len(session_ids) == 1:
            raise
        log.warning(
            "scoring the sections of %d sessions failed; scoring each alone", len(session_ids), exc_info=True
        )
    for session_id in session_ids:
        try:
            score_sessions(db, session_ids=[session_id], scorer=scorer, now_ms=now_ms)
        except Exception:
            log.exception("scoring the closed sections of session %s failed; it stays marked", session_id)


def expire_due(
    db: Database, *, now_ms: int, scorer: Scorer, session_id: str | None = None, limit: int | None = None
) -> int:
    """Close (EXPIRED) every open module whose deadline has passed (at most `limit`, earliest first), of one
    session or all; what was saved stays. A section closed by an expiry is scored with it. Returns how many
    modules expired."""
    with db.unit_of_work() as tx:
        expiring = sessions.due_modules(tx, now_ms=now_ms, session_id=session_id, limit=limit)
        if not expiring:
            return 0
        sessions.expire_modules(tx, module_ids=[module_id for module_id, _ in expiring])
        for affected in sorted({sid for _, sid in expiring}):
            score_closed_sections(tx, session_id=affected, scorer=scorer, now_ms=now_ms)
        return len(expiring)


# ---- a new session


def start_session(
    db: Database,
    *,
    daily_limit: int | None,
    session_id: str,
    student_id: str,
    scope: str,
    section: str,
    blueprint_version: str,
    request_id: str | None,
    created_by: str,
    now_ms: int,
    first_module: NewModule,
    sitting: SittingRecord | None = None,
    accommodation: Accommodation = STANDARD,
) -> tuple[SessionRecord, bool]:
    """`sessions.insert_session` under the daily limit (None: not limited) and inside its sitting's window.
    Counted and inserted on the one writer thread, so two concurrent starts cannot both take the last session of
    the day, and none starts after the sitting closed while its module was being assembled."""
    if sitting is not None:
        refusal = start_refusal(opens_ms=sitting.opens_ms, closes_ms=sitting.closes_ms, now_ms=now_ms)
        if refusal is not None:
            raise refusal
    if daily_limit is not None:
        started = sessions.count_sessions_since(db, student_id=student_id, since_ms=utc_day_start_ms(now_ms))
        check_daily_sessions(started_today=started, limit=daily_limit, now_ms=now_ms)
    return sessions.insert_session(
        db,
        session_id=session_id,
        student_id=student_id,
        scope=scope,
        section=section,
        blueprint_version=blueprint_version,
        request_id=request_id,
        created_by=created_by,
        now_ms=now_ms,
        first_module=first_module,
        sitting_id=sitting.sitting_id if sitting is not None else None,
        accommodation=accommodation,
    )


# ---- answers


def _accept_batch(tx: Tx, subs: Sequence[Submission]) -> list[SubmitOutcome | DomainError] | None:
    """Every answer of the batch in a few statements (lookups by IN, one multi-row INSERT): per answer, what
    `_accept_one` gives; None when an answer found its module's deadline passed (that answer closes its module,
    which `_accept_one` does)."""
    session_ids = {sub.session_id for sub in subs}
    stored = answers.stored_submissions(tx, session_ids=session_ids, request_ids={sub.request_id for sub in subs})
    heads = answers.lock_heads(tx, session_ids=session_ids)
    fresh = [sub for sub in subs if (sub.session_id, sub.request_id) not in stored]
    revisions = (
        answers.last_revisions(tx, module_ids={s.module_id for s in fresh}, item_ids={s.item_id for s in fresh})
        if fresh
        else {}
    )
    # Per answer: its outcome, or the position of its new row (a duplicate of an earlier answer of the batch
    # points at that one's row, and is its replay).
    results: list[SubmitOutcome | DomainError | int] = []
    first: dict[tuple[str, str], int] = {}
    rows: list[ResponseRecord] = []
    for sub in subs:
        key = (sub.session_id, sub.request_id)
        if key in stored:
            results.append(stored[key])
            continue
        if key in first:
            results.append(first[key])
            continue
        head = heads.get(sub.session_id)
        if head is None:
            results.append(NotFound(f"session {sub.session_id} not found"))
            continue
        refusal = answer_refusal(head, module_id=sub.module_id, item_id=sub.item_id)
        if refusal is not None:
            results.append(refusal)
            continue
        if too_late(head, sub.received_ms):
            return None
        revision = revisions.get((sub.module_id, sub.item_id), 0) + 1
        revisions[sub.module_id, sub.item_id] = revision
        first[key] = len(rows)
        results.append(len(rows))
        rows.append(sub.record(revision=revision))
    inserted = answers.insert_responses(tx, records=rows)
    outcomes: list[SubmitOutcome | DomainError] = []
    replayed: set[int] = set()
    for result in results:
        if not isinstance(result, int):
            outcomes.append(result)
            continue
        record = inserted[result]
        outcome = SubmitOutcome(
            response=record, replayed=result in replayed, deadline_ms=heads[record.session_id].deadline_ms
        )
        outcomes.append(outcome)
        replayed.add(result)
    return outcomes


def _accept_one(tx: Tx, sub: Submission, scorer: Scorer) -> SubmitOutcome | DomainError:
    replay = answers.submission(tx, session_id=sub.session_id, request_id=sub.request_id)
    if replay is not None:
        return replay
    head = answers.lock_head(tx, session_id=sub.session_id, module_id=sub.module_id)
    if head is None:
        return NotFound(f"session {sub.session_id} not found")
    refusal = answer_refusal(head, module_id=sub.module_id, item_id=sub.item_id)
    if refusal is not None:
        return refusal
    if too_late(head, sub.received_ms):
        # The late answer closes its module for good (kept when the transaction commits), and the section it
        # closes is scored with the expiry.
        sessions.expire_modules(tx, module_ids=[sub.module_id])
        score_closed_sections(tx, session_id=sub.session_id, scorer=scorer, now_ms=sub.received_ms)
        return late_answer_error()
    revision = answers.last_revision(tx, module_id=sub.module_id, item_id=sub.item_id) + 1
    record = answers.insert_response(tx, record=sub.record(revision=revision))
    return SubmitOutcome(response=record, replayed=False, deadline_ms=head.deadline_ms)


def submit_answers(
    db: Database, *, submissions: Sequence[Submission], scorer: Scorer
) -> list[SubmitOutcome | DomainError]:
    """Store a batch of answers in ONE transaction (one commit, one fsync).

    Per submission: its stored result, the first result of its request id (a replay, also when a duplicate sits
    earlier in the same batch), or the DomainError refusing it. Nothing is acknowledged before the commit.
    Usually a few statements for the whole batch; a batch where an answer closes its module by its deadline, or
    meets a request id stored meanwhile by another writer, is undone and written again answer by answer, each in
    a savepoint, in a transaction of its own.
    """
    # The batch is the whole transaction, so a unique key met in it undoes the transaction, not a savepoint (whose
    # two statements were a sixth of the writer's CPU per answer).
    try:
        with db.unit_of_work() as tx:
            batched = _accept_batch(tx, submissions)
            if batched is not None:
                return batched
    except Conflict:
        pass
    # A request id stored meanwhile by another writer, or an answer after its module's deadline (the batch wrote
    # nothing then): answer by answer.
    with db.unit_of_work() as tx:
        return _accept_each(tx, submissions, scorer)


def _accept_each(tx: Tx, submissions: Sequence[Submission], scorer: Scorer) -> list[SubmitOutcome | DomainError]:
    results: list[SubmitOutcome | DomainError] = []
    for sub in submissions:
        try:
            with savepoint(tx):
                results.append(_accept_one(tx, sub, scorer))
        except Conflict:
            replay = answers.submission(tx, session_id=sub.session_id, request_id=sub.request_id)
            if replay is None:
                raise
            results.append(replay)
    return results


# ---- a module's end: advance and finish


@dataclass(frozen=True)
class Advance:
    """One student's move to the next module, everything computed before the write: the router's estimate, the
    next module assembled (None after the last)."""

    session_id: str
    request_id: str | None
    from_module_id: str
    now_ms: int
    router_score: RouterScore | None
    next_module: NewModule | None


@dataclass(frozen=True)
class Advanced:
    """What an advance found and wrote: `applied` False when one with its request id was applied before; `closing`
    how it closed the module it left (None: that module had closed already, at its deadline); `section_closed`:
    the advance left a section, whose score is to be computed (`score_sessions`)."""

    applied: bool
    closing: Closing | None = None
    section_closed: bool = False


def _checked(tx: Tx, job: Advance) -> Advanced | ModuleLeft:
    """What an advance finds before it writes: Advanced(applied=False) when one with its request id was applied
    before, else the module it leaves, locked with its session; the DomainError refusing it is raised. It only
    reads, so a refused advance of a group leaves nothing to undo."""
    locked = sessions.lock_session(tx, session_id=job.session_id)
    if locked is None:
        raise NotFound(f"session {job.session_id} not found")
    # After the lock: on PostgreSQL a concurrent advance with this request id (another process) may have
    # committed while this one waited for the session row.
    applied, left = sessions.module_left(
        tx, module_id=job.from_module_id, session_id=job.session_id, request_id=job.request_id
    )
    if applied:
        return Advanced(applied=False)
    if locked.voided:
        raise voided_error()
    if locked.paused:
        raise paused_error()
    if locked.state != STATE_IN_PROGRESS or locked.current_module_id != job.from_module_id or left is None:
        raise FailedPrecondition(
            "the session has moved on since this request started; reload it", reason="SESSION_MOVED_ON"
        )
    if job.router_score is not None and left.newest_response_id > job.router_score.scored_through:
        raise Aborted(
            "an answer arrived while the module was being scored; advance again",
            reason="ANSWERED_WHILE_SCORING",
        )
    return left


def _apply(tx: Tx, job: Advance, left: ModuleLeft) -> Advanced:
    """Close the module the advance leaves and open the next one (or none after the last), in the caller's
    transaction. A section that closes with it is marked for its score (`score_sessions`), not scored here."""
    closed = closing(deadline_ms=left.deadline_ms, now_ms=job.now_ms) if left.status == STATUS_OPEN else None
    sessions.close_module(tx, module_id=job.from_module_id, closing=closed, router=job.router_score)
    if job.next_module is not None:
        sessions.add_module(tx, session_id=job.session_id, module=job.next_module)
    sessions.set_current_module(
        tx, session_id=job.session_id, module_id=job.next_module.module_id if job.next_module is not None else None
    )
    if job.request_id:
        sessions.record_advance(
            tx,
            session_id=job.session_id,
            request_id=job.request_id,
            closed_module_id=job.from_module_id,
            now_ms=job.now_ms,
        )
    # A section closes with its last module: a move within the section (a router's second stage) closes none. Its
    # score is not computed here: a room leaving a section together would hold the writer (and every answer queued
    # behind it) for the whole room's scoring; the caller has it scored at the writer's next idle turn.
    section_closed = job.next_module is None or job.next_module.section != left.section
    if section_closed:
        scores.mark_pending(tx, session_id=job.session_id, now_ms=job.now_ms)
    return Advanced(applied=True, closing=closed, section_closed=section_closed)


def advance_group(db: Database, *, jobs: Sequence[Advance]) -> list[Advanced | Exception]:
    """Every advance of the group in ONE transaction (one commit, one fsync); per job, what it wrote or found
    applied before, or the DomainError refusing it (a refusal is found before any write, so it leaves the others).

    A room whose modules end together sends its advances together: one commit for all of them, where one each
    made every answer wait behind a queue of commits. Should the group's transaction fail as a whole (the
    database busy, a unique key met, a fault in one advance), each advance is written again alone, so that it
    fails only its own.
    """
    if len(jobs) == 1:
        return [_advance_alone(db, jobs[0])]
    try:
        return list(_advance_together(db, jobs))
    except Exception:
        log.warning("a group of %d advances failed; writing each alone", len(jobs), exc_info=True)
    alone: list[Advanced | Exception] = []
    for job in jobs:
        try:
            alone.append(_advance_alone(db, job))
        except Exception as failure:
            alone.append(failure)
    return alone


def _advance_alone(db: Database, job: Advance) -> Advanced | DomainError:
    try:
        return _advance_together(db, [job])[0]
    except Conflict:
        # A retry of this advance stored by another process first (met at its request id's row or at the commit).
        if job.request_id and sessions.advance_applied(db, session_id=job.session_id, request_id=job.request_id):
            return Advanced(applied=False)
        raise


def _advance_together(db: Database, jobs: Sequence[Advance]) -> list[Advanced | DomainError]:
    # No savepoint per advance: its two statements were a sixth of an advance's writes, and a refusal undoes
    # nothing. Sessions are locked in the order of their ids: two processes' groups on PostgreSQL cannot each hold
    # a row the other waits for.
    results: dict[int, Advanced | DomainError] = {}
    with db.unit_of_work() as tx:
        for index in sorted(range(len(jobs)), key=lambda i: jobs[i].session_id):
            job = jobs[index]
            try:
                checked = _checked(tx, job)
            except DomainError as refusal:
                results[index] = refusal
                continue
            results[index] = checked if isinstance(checked, Advanced) else _apply(tx, job, checked)
    return [results[index] for index in range(len(jobs))]


def finish(db: Database, *, session_id: str, now_ms: int) -> None:
    """Close every open module and finish; the sections that closed are left marked for `score_sessions`."""
    with db.unit_of_work() as tx:
        locked = sessions.lock_session(tx, session_id=session_id)
        if locked is None:
            raise NotFound(f"session {session_id} not found")
        if locked.state == STATE_FINISHED:
            return
        if locked.paused:
            raise paused_error()
        for module_id, deadline_ms in sessions.open_modules(tx, session_id=session_id):
            sessions.close_module(tx, module_id=module_id, closing=closing(deadline_ms=deadline_ms, now_ms=now_ms))
        sessions.mark_finished(tx, session_id=session_id, now_ms=now_ms)
        # As an advance's: a room finishing together would otherwise wait for the room's scoring.
        scores.mark_pending(tx, session_id=session_id, now_ms=now_ms)


# ---- ratings


def rate(
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
    """Store a rating and resolve its response; a rating that makes it final re-scores its section."""
    try:
        with db.unit_of_work() as tx:
            if request_id:
                replay = scores.replayed_rating(tx, rater_id=rater_id, request_id=request_id)
                if replay is not None:
                    return replay
            task = scores.rating_task(tx, response_id=response_id)
            if task is None:
                raise NotFound(f"rating task {response_id} not found")
            decision = decide_rating(
                response_id=response_id,
                task_state=task.state,
                double_rated=task.double_rated,
                earlier=scores.ratings_of(tx, response_id=response_id),
                rater_id=rater_id,
                score=score,
            )
            scores.insert_rating(
                tx,
                rating_id=rating_id,
                response_id=response_id,
                rater_id=rater_id,
                score=score,
                dimension_scores_json=dimension_scores_json,
                comment=comment,
                adjudication=decision.rating.adjudication,
                request_id=request_id,
                now_ms=now_ms,
            )
            final = decision.final_score is not None
            scores.update_rating_task(
                tx,
                response_id=response_id,
                state=decision.task_state,
                rule=decision.rule,
                final_score=decision.final_score,
                final_ms=now_ms if final else None,
            )
            if final:
                session = scores.scored_sessions(tx, session_ids=[task.session_id])[task.session_id]
                candidate = candidate_version(
                    session=session,
                    previous=scores.latest(tx, session_id=task.session_id),
                    recompute=scores.section_inputs(tx, session_id=task.session_id, sections=[task.section]),
                    scorer=scorer,
                    reason="rating",
                    now_ms=now_ms,
                )
                scores.insert_versions(tx, versions=[candidate])
            return RatingOutcome(
                rating_id=rating_id,
                response_id=response_id,
                state=decision.task_state,
                final_score=decision.final_score,
                rule=decision.rule,
            )
    except Conflict:
        if request_id:
            replay = scores.find_rating(db, rater_id=rater_id, request_id=request_id)
            if replay is not None:
                return replay
        raise already_rated(response_id) from None


# ---- the service's own downtime


def recover_lost_time(
    db: Database, *, process_id: str, now_ms: int, seen: Mapping[str, int] | None, stale_ms: int, grace_ms: int
) -> tuple[Outage, int, int] | None:
    """At start-up: when the service was down (the other processes' heartbeats `seen` silent; None when one was
    alive), give the modules open during the outage their lost time back, once however many processes start
    together. Returns the outage, the time given back and how many modules got it, or None. This process's first
    heartbeat commits with it."""
    with db.unit_of_work() as tx:
        signs = outages.signs_of_life(tx, besides=process_id)
        outage = outage_before(seen, signs, now_ms=now_ms)
        dead = [p for p, alive_ms in signs.items() if now_ms - alive_ms >= stale_ms or outage is not None]
        outages.forget(tx, dead)
        outages.beat(tx, process_id=process_id, now_ms=now_ms)
        if outage is None:
            return None
        time_back_ms = outage.time_back_ms(grace_ms)
        if not outages.claim(tx, outage, time_back_ms=time_back_ms):
            return None
        return outage, time_back_ms, outages.extend_open_modules(tx, outage, time_back_ms=time_back_ms)


def heartbeat(db: Database, *, process_id: str, now_ms: int) -> None:
    with db.unit_of_work() as tx:
        outages.beat(tx, process_id=process_id, now_ms=now_ms)
