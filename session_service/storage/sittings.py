"""Storage of sittings and accommodations, on the Core connection."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, tuple_, update

from session_service.domain.accommodations import STANDARD, Accommodation
from session_service.domain.sittings import Seat
from session_service.domain.states import STATUS_OPEN
from session_service.storage.engine import Database, Tx
from session_service.storage.models import (
    AccommodationRow,
    Enrolment,
    Event,
    ExamSession,
    Module,
    ModuleItem,
    Response,
    SchoolClass,
    Sitting,
    User,
)


@dataclass(frozen=True)
class SittingRecord:
    sitting_id: str
    class_id: str
    title: str
    blueprint_version: str
    scope: str
    section: str
    opens_ms: int
    closes_ms: int
    access_code: str
    created_by: str
    create_ms: int
    update_ms: int
    revision: int


@dataclass(frozen=True)
class AccommodationRecord:
    student_id: str
    accommodation: Accommodation
    reason: str
    set_by: str
    update_ms: int


_SITTING_COLUMNS = tuple(Sitting.__table__.c)


def _sitting(row: Any) -> SittingRecord:
    return SittingRecord(**{column.key: getattr(row, column.key) for column in _SITTING_COLUMNS})


def insert_sitting(tx: Tx, *, sitting: SittingRecord) -> None:
    tx.execute(insert(Sitting), {column.key: getattr(sitting, column.key) for column in _SITTING_COLUMNS})


def sitting_of(conn: Connection, *, sitting_id: str, lock: bool = False) -> SittingRecord | None:
    query = select(*_SITTING_COLUMNS).where(Sitting.sitting_id == sitting_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _sitting(row)


def get_sitting(db: Database, *, sitting_id: str) -> SittingRecord | None:
    with db.read_statement() as conn:
        return sitting_of(conn, sitting_id=sitting_id)


def update_sitting(tx: Tx, *, sitting_id: str, values: dict[str, Any]) -> None:
    tx.execute(update(Sitting).where(Sitting.sitting_id == sitting_id).values(**values))


def list_sittings(
    db: Database, *, class_ids: Collection[str] | None, after: tuple[int, str] | None, limit: int
) -> list[SittingRecord]:
    """Latest opening first; `class_ids` None: every class; `after`: the (opens_ms, id) of the last one seen."""
    query = select(*_SITTING_COLUMNS)
    if class_ids is not None:
        if not class_ids:
            return []
        query = query.where(Sitting.class_id.in_(list(class_ids)))
    if after is not None:
        query = query.where(tuple_(Sitting.opens_ms, Sitting.sitting_id) < after)
    with db.read_statement() as conn:
        rows = conn.execute(query.order_by(Sitting.opens_ms.desc(), Sitting.sitting_id.desc()).limit(limit)).all()
    return [_sitting(row) for row in rows]


def class_ids_of(db: Database, *, teacher_id: str | None = None, student_id: str | None = None) -> list[str]:
    """The classes a teacher teaches, or a student is enrolled in."""
    if teacher_id is not None:
        query = select(SchoolClass.class_id).where(SchoolClass.teacher_id == teacher_id)
    else:
        query = select(Enrolment.class_id).where(Enrolment.student_id == student_id)
    with db.read_statement() as conn:
        return list(conn.scalars(query))


def enrolled(conn: Connection, *, class_id: str, student_id: str) -> bool:
    query = select(Enrolment.student_id).where(Enrolment.class_id == class_id, Enrolment.student_id == student_id)
    return conn.execute(query).first() is not None


def is_enrolled(db: Database, *, class_id: str, student_id: str) -> bool:
    with db.read_statement() as conn:
        return enrolled(conn, class_id=class_id, student_id=student_id)


# ---- accommodations


# Built once: every session's start reads it, on the event loop.
_ACCOMMODATION = select(AccommodationRow.__table__).where(AccommodationRow.student_id == bindparam("student_id"))


def accommodation_of(conn: Connection, *, student_id: str) -> AccommodationRecord | None:
    row = conn.execute(_ACCOMMODATION, {"student_id": student_id}).first()
    if row is None:
        return None
    return AccommodationRecord(
        student_id=row.student_id,
        accommodation=Accommodation(time_multiplier=row.time_multiplier, break_seconds=row.break_seconds),
        reason=row.reason,
        set_by=row.set_by,
        update_ms=row.update_ms,
    )


def get_accommodation(db: Database, *, student_id: str) -> AccommodationRecord | None:
    with db.read_statement() as conn:
        return accommodation_of(conn, student_id=student_id)


def pinned_accommodation(db: Database, *, student_id: str) -> Accommodation:
    """What a session starting now pins: the student's accommodation, or standard time."""
    found = get_accommodation(db, student_id=student_id)
    return STANDARD if found is None else found.accommodation


def put_accommodation(tx: Tx, *, record: AccommodationRecord) -> None:
    values = {
        "time_multiplier": record.accommodation.time_multiplier,
        "break_seconds": record.accommodation.break_seconds,
        "reason": record.reason,
        "set_by": record.set_by,
        "update_ms": record.update_ms,
    }
    changed = tx.execute(
        update(AccommodationRow).where(AccommodationRow.student_id == record.student_id).values(**values)
    )
    if not changed.rowcount:
        tx.execute(insert(AccommodationRow), {"student_id": record.student_id, **values})


# ---- the room at a glance

FOCUS_LOST = "EVENT_TYPE_FOCUS_LOST"
# Per session of the sitting, its current module and the counts a proctor reads: each a correlated count on an
# index (responses by module and by session, events by session, pinned items by module).
_ITEMS = select(func.count()).where(ModuleItem.module_id == ExamSession.current_module_id).scalar_subquery()
_ANSWERED = (
    select(func.count(func.distinct(Response.item_id)))
    .where(Response.module_id == ExamSession.current_module_id)
    .scalar_subquery()
)
_FOCUS_LOST = (
    select(func.count())
    .where(Event.session_id == ExamSession.session_id, Event.event_type == FOCUS_LOST)
    .scalar_subquery()
)
_LAST_ANSWER = (
    select(func.max(Response.saved_ms)).where(Response.session_id == ExamSession.session_id).scalar_subquery()
)
_LAST_EVENT = select(func.max(Event.server_ms)).where(Event.session_id == ExamSession.session_id).scalar_subquery()


def seats(db: Database, *, sitting_id: str, class_id: str) -> list[Seat]:
    """Every student of the class with their latest session of the sitting (one snapshot, two statements)."""
    with db.read_transaction() as conn:
        students = conn.execute(
            select(User.user_id, User.display_name)
            .join(Enrolment, Enrolment.student_id == User.user_id)
            .where(Enrolment.class_id == class_id)
            .order_by(User.display_name, User.user_id)
        ).all()
        rows = conn.execute(
            select(
                ExamSession.student_id,
                ExamSession.session_id,
                ExamSession.state,
                ExamSession.paused_ms,
                ExamSession.voided_ms,
                ExamSession.create_ms,
                Module.section,
                Module.stage,
                Module.sequence,
                Module.status,
                Module.deadline_ms,
                _ITEMS.label("items"),
                _ANSWERED.label("answered"),
                _FOCUS_LOST.label("focus_lost"),
                _LAST_ANSWER.label("last_answer"),
                _LAST_EVENT.label("last_event"),
            )
            .outerjoin(Module, Module.module_id == ExamSession.current_module_id)
            .where(ExamSession.sitting_id == sitting_id)
            .order_by(ExamSession.create_ms)
        ).all()
    # A student who started again (after an incident) is seen in their latest session.
    latest = {row.student_id: row for row in rows}
    found = []
    for student_id, display_name in students:
        row = latest.get(student_id)
        if row is None:
            found.append(Seat(student_id=student_id, display_name=display_name))
            continue
        found.append(
            Seat(
                student_id=student_id,
                display_name=display_name,
                session_id=row.session_id,
                session_state=row.state,
                paused=row.paused_ms is not None,
                voided=row.voided_ms is not None,
                section=row.section or "",
                stage=row.stage or "",
                module_sequence=row.sequence or 0,
                module_open=row.status == STATUS_OPEN,
                deadline_ms=row.deadline_ms or 0,
                paused_ms=row.paused_ms,
                answered=row.answered or 0,
                items=row.items or 0,
                focus_lost=row.focus_lost or 0,
                last_activity_ms=max(row.create_ms, row.last_answer or 0, row.last_event or 0),
            )
        )
    return found
