"""Units of work of staff actions (sittings, accommodations, a proctor's pause, resume, extension and void): each
one transaction that applies the rule, writes, and appends its audit entry, so no action goes unrecorded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from session_service.domain import proctoring
from session_service.domain.modules import closing
from session_service.domain.scores import Scorer
from session_service.domain.states import STATE_IN_PROGRESS
from session_service.storage import audit, sessions, sittings
from session_service.storage.audit import AuditRecord
from session_service.storage.engine import Conflict, Database
from session_service.storage.sittings import AccommodationRecord, SittingRecord
from session_service.writer import score_closed_sections
from toefl_core.errors import Aborted, NotFound


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit log: a user id (or a service's name) and its role."""

    user_id: str
    role: str


def _entry(actor: Actor, *, audit_id: str, now_ms: int, action: str, **facts: Any) -> AuditRecord:
    return AuditRecord(
        audit_id=audit_id, time_ms=now_ms, actor=actor.user_id, actor_role=actor.role, action=action, **facts
    )


def create_sitting(db: Database, *, sitting: SittingRecord, actor: Actor, audit_id: str) -> None:
    with db.unit_of_work() as tx:
        sittings.insert_sitting(tx, sitting=sitting)
        audit.append(
            tx,
            _entry(
                actor,
                audit_id=audit_id,
                now_ms=sitting.create_ms,
                action="create_sitting",
                target_type="sitting",
                target=sitting.sitting_id,
                student_id=None,
                reason="",
                detail=_sitting_facts(sitting),
            ),
        )


def _sitting_facts(sitting: SittingRecord) -> dict[str, Any]:
    # The code itself is not logged: the log is read more widely than the sitting.
    return {
        "class_id": sitting.class_id,
        "title": sitting.title,
        "blueprint_version": sitting.blueprint_version,
        "scope": sitting.scope,
        "section": sitting.section,
        "opens_ms": sitting.opens_ms,
        "closes_ms": sitting.closes_ms,
        "has_access_code": bool(sitting.access_code),
    }


def update_sitting(
    db: Database,
    *,
    sitting_id: str,
    changes: dict[str, Any],
    revision: int | None,
    actor: Actor,
    reason: str,
    audit_id: str,
    now_ms: int,
) -> SittingRecord:
    """Apply `changes` (column -> value) if the sitting is still at `revision` (None: any)."""
    with db.unit_of_work() as tx:
        found = sittings.sitting_of(tx, sitting_id=sitting_id, lock=True)
        if found is None:
            raise NotFound(f"sitting {sitting_id} not found")
        if revision is not None and revision != found.revision:
            raise Aborted("the sitting changed since it was read; read it again", reason="STALE_ETAG")
        updated = replace(found, **changes, update_ms=now_ms, revision=found.revision + 1)
        sittings.update_sitting(
            tx, sitting_id=sitting_id, values={**changes, "update_ms": now_ms, "revision": updated.revision}
        )
        before, after = _sitting_facts(found), _sitting_facts(updated)
        audit.append(
            tx,
            _entry(
                actor,
                audit_id=audit_id,
                now_ms=now_ms,
                action="update_sitting",
                target_type="sitting",
                target=sitting_id,
                student_id=None,
                reason=reason,
                detail={
                    key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]
                },
            ),
        )
        return updated


def set_accommodation(db: Database, *, record: AccommodationRecord, actor: Actor, audit_id: str) -> None:
    with db.unit_of_work() as tx:
        previous = sittings.accommodation_of(tx, student_id=record.student_id)
        sittings.put_accommodation(tx, record=record)
        before = previous.accommodation if previous is not None else None
        audit.append(
            tx,
            _entry(
                actor,
                audit_id=audit_id,
                now_ms=record.update_ms,
                action="set_accommodation",
                target_type="student",
                target=record.student_id,
                student_id=record.student_id,
                reason=record.reason,
                detail={
                    "extra_time_multiplier": record.accommodation.time_multiplier,
                    "break_seconds": record.accommodation.break_seconds,
                    "previous_extra_time_multiplier": before.time_multiplier if before else None,
                    "previous_break_seconds": before.break_seconds if before else None,
                },
            ),
        )


def record_action(
    db: Database,
    *,
    actor: Actor,
    audit_id: str,
    now_ms: int,
    action: str,
    target_type: str,
    target: str,
    student_id: str | None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """An action whose only write is its entry (an export of a student's data)."""
    with db.unit_of_work() as tx:
        audit.append(
            tx,
            _entry(
                actor,
                audit_id=audit_id,
                now_ms=now_ms,
                action=action,
                target_type=target_type,
                target=target,
                student_id=student_id,
                reason=reason,
                detail=detail or {},
            ),
        )


# ---- a proctor's actions on a session


@dataclass(frozen=True)
class ProctorAction:
    action: str
    session_id: str
    student_id: str
    request_id: str
    reason: str = ""
    minutes: int = 0


def proctor(
    db: Database, *, act: ProctorAction, actor: Actor, audit_id: str, now_ms: int, scorer: Scorer
) -> AuditRecord:
    """Apply a proctor's action to the session, locked, and record it; a request id already applied (by this or
    another process) applies nothing and answers the first entry."""
    try:
        with db.unit_of_work() as tx:
            clock = sessions.lock_clock(tx, session_id=act.session_id)
            if clock is None:
                raise NotFound(f"session {act.session_id} not found")
            # After the lock: another process may have applied this request id while this one waited.
            done = audit.by_request(tx, target=act.session_id, request_id=act.request_id)
            if done is not None:
                return done
            detail = _apply(tx, act, clock, now_ms=now_ms, scorer=scorer)
            entry = _entry(
                actor,
                audit_id=audit_id,
                now_ms=now_ms,
                action=act.action,
                target_type="session",
                target=act.session_id,
                student_id=act.student_id,
                reason=act.reason,
                detail=detail,
                request_id=act.request_id,
            )
            audit.append(tx, entry)
            return entry
    except Conflict:
        done = audit.find_by_request(db, target=act.session_id, request_id=act.request_id)
        if done is None:
            raise
        return done


def _apply(
    tx: Any, act: ProctorAction, clock: proctoring.SessionClock, *, now_ms: int, scorer: Scorer
) -> dict[str, Any]:
    """The action's write; returns its facts for the audit entry."""
    if act.action == proctoring.PAUSE:
        module_id = proctoring.check_pause(clock, now_ms=now_ms)
        sessions.set_pause(tx, session_id=act.session_id, paused_ms=now_ms)
        left = proctoring.remaining_ms(deadline_ms=clock.deadline_ms, now_ms=now_ms, paused_ms=None)
        return {"module_id": module_id, "remaining_ms": left}
    if act.action == proctoring.RESUME:
        module_id, deadline = proctoring.resumed_deadline(clock, now_ms=now_ms)
        sessions.set_deadline(tx, module_id=module_id, deadline_ms=deadline)
        sessions.set_pause(tx, session_id=act.session_id, paused_ms=None)
        assert clock.paused_ms is not None
        return {
            "module_id": module_id,
            "remaining_ms": deadline - now_ms,
            "paused_for_ms": now_ms - clock.paused_ms,
        }
    if act.action == proctoring.EXTEND:
        module_id, deadline = proctoring.extended_deadline(clock, minutes=act.minutes, now_ms=now_ms)
        sessions.set_deadline(tx, module_id=module_id, deadline_ms=deadline)
        return {"module_id": module_id, "minutes": act.minutes, "deadline_ms": deadline}
    proctoring.check_void(clock)
    was_running = clock.state == STATE_IN_PROGRESS
    if was_running:
        # The clock of a paused module stopped at the pause: it closes as of then, what was saved kept.
        at = clock.paused_ms if clock.paused_ms is not None else now_ms
        for module_id, deadline_ms in sessions.open_modules(tx, session_id=act.session_id):
            sessions.close_module(tx, module_id=module_id, closing=closing(deadline_ms=deadline_ms, now_ms=at))
        sessions.mark_finished(tx, session_id=act.session_id, now_ms=now_ms)
    sessions.mark_voided(tx, session_id=act.session_id, now_ms=now_ms, reason=act.reason)
    if was_running:
        score_closed_sections(tx, session_id=act.session_id, scorer=scorer, now_ms=now_ms)
    return {"was_in_progress": was_running}
