"""Storage of a student's privacy rights: the export of everything held about them, and its erasure (on the Core
connection)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update

from session_service.domain.recordings import archive_path
from session_service.storage import audit, recordings, sittings
from session_service.storage.engine import Database, Tx
from session_service.storage.models import (
    AccommodationRow,
    AdvanceRequest,
    AuditEvent,
    Enrolment,
    Event,
    EventBatch,
    ExamSession,
    Module,
    ModuleItem,
    ModulePassage,
    PendingScore,
    RatingRow,
    RatingTask,
    RescoreRequest,
    Response,
    SchoolClass,
    ScoreVersion,
    SectionScoreRow,
    User,
)
from session_service.storage.scores import versions_of
from session_service.storage.sign_ins import forget_user
from toefl_core.errors import NotFound


@dataclass(frozen=True)
class EraseCounts:
    sessions: int
    responses: int
    events: int
    audit_id: str
    recordings: int = 0
    recording_bytes: int = 0


def export_student(db: Database, *, student_id: str) -> dict[str, Any]:
    """Everything held about one student, JSON-ready (no password hash: it is not information about them)."""
    with db.read_transaction() as conn:
        user = conn.execute(select(User.__table__).where(User.user_id == student_id)).first()
        if user is None:
            raise NotFound(f"student {student_id} not found")
        classes = conn.execute(
            select(SchoolClass.class_id, SchoolClass.name)
            .join(Enrolment, Enrolment.class_id == SchoolClass.class_id)
            .where(Enrolment.student_id == student_id)
            .order_by(SchoolClass.class_id)
        ).all()
        sessions = conn.execute(
            select(ExamSession.__table__)
            .where(ExamSession.student_id == student_id)
            .order_by(ExamSession.create_ms)
        ).all()
        document_sessions = []
        for session in sessions:
            modules = conn.execute(
                select(Module.__table__).where(Module.session_id == session.session_id).order_by(Module.sequence)
            ).all()
            responses = conn.execute(
                select(Response.__table__)
                .where(Response.session_id == session.session_id)
                .order_by(Response.response_id)
            ).all()
            events = conn.execute(
                select(Event.__table__).where(Event.session_id == session.session_id).order_by(Event.event_id)
            ).all()
            audio = recordings.session_recordings(conn, session_id=session.session_id)
            document_sessions.append(
                {
                    "session_id": session.session_id,
                    "scope": session.scope,
                    "section": session.section,
                    "state": session.state,
                    "blueprint_version": session.blueprint_version,
                    "create_ms": session.create_ms,
                    "finish_ms": session.finish_ms,
                    "modules": [
                        {
                            "module_id": m.module_id,
                            "sequence": m.sequence,
                            "plan_key": m.plan_key,
                            "seed": m.seed,
                            "section": m.section,
                            "stage": m.stage,
                            "status": m.status,
                            "start_ms": m.start_ms,
                            "deadline_ms": m.deadline_ms,
                            "close_ms": m.close_ms,
                            "theta": m.theta,
                            "theta_se": m.theta_se,
                            "routing_decision": m.routing_decision,
                            "items": [
                                {"item_id": item_id, "revision": revision}
                                for item_id, revision in conn.execute(
                                    select(ModuleItem.item_id, ModuleItem.revision)
                                    .where(ModuleItem.module_id == m.module_id)
                                    .order_by(ModuleItem.position)
                                )
                            ],
                        }
                        for m in modules
                    ],
                    "responses": [
                        {
                            "module_id": r.module_id,
                            "item_id": r.item_id,
                            "revision": r.revision,
                            "answer": json.loads(r.answer_json),
                            "request_id": r.request_id,
                            "elapsed_ms": r.elapsed_ms,
                            "saved_ms": r.saved_ms,
                        }
                        for r in responses
                    ],
                    # The audio itself is in the archive (ExportStudentArchive), at each one's archive_path.
                    "recordings": [
                        {
                            "audio_ref": r.recording_id,
                            "module_id": r.module_id,
                            "item_id": r.item_id,
                            "request_id": r.request_id,
                            "content_type": r.content_type,
                            "byte_size": r.byte_size,
                            "sha256": r.sha256,
                            "duration_ms": r.duration_ms,
                            "create_ms": r.create_ms,
                            "archive_path": archive_path(r.recording_id, r.content_type),
                        }
                        for r in audio
                    ],
                    "score_versions": [
                        dataclasses.asdict(v)
                        for v in versions_of(conn, session_id=session.session_id, newest_first=False)
                    ],
                    "events": [
                        {
                            "type": e.event_type,
                            "item_id": e.item_id,
                            "detail": e.detail,
                            "client_ms": e.client_ms,
                            "server_ms": e.server_ms,
                        }
                        for e in events
                    ],
                }
            )
        return {
            "student": {
                "user_id": user.user_id,
                "username": user.username,
                "display_name": user.display_name,
                "role": user.role,
                "create_ms": user.create_ms,
                "erased": user.erased,
            },
            "classes": [{"class_id": c, "name": n} for c, n in classes],
            "accommodation": _accommodation(conn, student_id),
            "sessions": document_sessions,
            "audit_events": [
                {
                    "audit_id": a.audit_id,
                    "actor": a.actor,
                    "action": a.action,
                    "detail": json.loads(a.detail_json),
                    "time_ms": a.time_ms,
                }
                for a in conn.execute(
                    select(AuditEvent.__table__)
                    .where(AuditEvent.target == student_id)
                    .order_by(AuditEvent.time_ms)
                )
            ],
        }


def erase_student(
    db: Database,
    *,
    student_id: str,
    actor: str,
    reason: str,
    audit_id: str,
    now_ms: int,
    password_hash: str,
    pseudonym: str,
) -> EraseCounts:
    """Delete the student's sessions, responses and events, blank their personal data, and audit the erasure.

    The account row stays (anonymised, unusable: `password_hash` is a hash of a random secret nobody knows) so
    that the audit event keeps pointing at an id.
    """
    with db.unit_of_work() as tx:
        user = tx.execute(select(User.role).where(User.user_id == student_id)).first()
        if user is None or user.role != "student":
            raise NotFound(f"student {student_id} not found")
        session_ids = list(tx.scalars(select(ExamSession.session_id).where(ExamSession.student_id == student_id)))
        responses = events = audio = audio_bytes = 0
        if session_ids:
            responses = tx.scalar(select(func.count()).where(Response.session_id.in_(session_ids))) or 0
            events = tx.scalar(select(func.count()).where(Event.session_id.in_(session_ids))) or 0
            # Explicit deletes rather than relying on ON DELETE CASCADE: the counts are reported and the
            # order is right on every backend.
            _delete_session_scores(tx, session_ids)
            audio, audio_bytes = recordings.erase(tx, session_ids=session_ids)
            tx.execute(delete(Response).where(Response.session_id.in_(session_ids)))
            tx.execute(delete(Event).where(Event.session_id.in_(session_ids)))
            tx.execute(delete(AdvanceRequest).where(AdvanceRequest.session_id.in_(session_ids)))
            tx.execute(delete(EventBatch).where(EventBatch.session_id.in_(session_ids)))
            tx.execute(delete(PendingScore).where(PendingScore.session_id.in_(session_ids)))
            module_ids = select(Module.module_id).where(Module.session_id.in_(session_ids))
            tx.execute(delete(ModuleItem).where(ModuleItem.module_id.in_(module_ids)))
            tx.execute(delete(ModulePassage).where(ModulePassage.module_id.in_(module_ids)))
            tx.execute(delete(Module).where(Module.session_id.in_(session_ids)))
            tx.execute(delete(ExamSession).where(ExamSession.session_id.in_(session_ids)))
        tx.execute(delete(Enrolment).where(Enrolment.student_id == student_id))
        # An accommodation's reason may be health data: it goes with the rest (its audit entries stay, re-keyed).
        tx.execute(delete(AccommodationRow).where(AccommodationRow.student_id == student_id))
        # An erased student is signed out everywhere: no refresh token of theirs renews anything.
        forget_user(tx, user_id=student_id)
        tx.execute(
            update(User)
            .where(User.user_id == student_id)
            .values(username=f"erased-{student_id}", display_name="", password_hash=password_hash, erased=True)
        )
        # The entries about the student (accommodations and their reasons, a proctor's actions) are kept for a
        # legal claim, under a pseudonym nothing links back to the account; the erasure's own entry names the
        # account, which keeps only its id.
        audit.pseudonymise(tx, student_id=student_id, pseudonym=pseudonym)
        audit.append(
            tx,
            audit.AuditRecord(
                audit_id=audit_id,
                time_ms=now_ms,
                actor=actor,
                actor_role="admin",
                action="erase_student_data",
                target_type="student",
                target=student_id,
                student_id=student_id,
                reason=reason,
                detail={
                    "reason": reason,
                    "sessions_erased": len(session_ids),
                    "responses_erased": responses,
                    "events_erased": events,
                    "recordings_erased": audio,
                    "recording_bytes_erased": audio_bytes,
                },
            ),
        )
        return EraseCounts(
            sessions=len(session_ids),
            responses=responses,
            events=events,
            audit_id=audit_id,
            recordings=audio,
            recording_bytes=audio_bytes,
        )


def _accommodation(conn: Tx, student_id: str) -> dict[str, Any] | None:
    found = sittings.accommodation_of(conn, student_id=student_id)
    if found is None:
        return None
    return {
        "extra_time_multiplier": found.accommodation.time_multiplier,
        "break_seconds": found.accommodation.break_seconds,
        "reason": found.reason,
        "set_by": found.set_by,
        "update_ms": found.update_ms,
    }


def _delete_session_scores(tx: Tx, session_ids: Collection[str]) -> None:
    """Erasure: the scores, ratings and rating tasks of these sessions (before their responses go)."""
    tasks = select(RatingTask.response_id).where(RatingTask.session_id.in_(session_ids))
    tx.execute(delete(RatingRow).where(RatingRow.response_id.in_(tasks)))
    tx.execute(delete(RatingTask).where(RatingTask.session_id.in_(session_ids)))
    versions = select(ScoreVersion.score_id).where(ScoreVersion.session_id.in_(session_ids))
    tx.execute(delete(SectionScoreRow).where(SectionScoreRow.score_id.in_(versions)))
    tx.execute(delete(ScoreVersion).where(ScoreVersion.session_id.in_(session_ids)))
    tx.execute(delete(RescoreRequest).where(RescoreRequest.session_id.in_(session_ids)))
