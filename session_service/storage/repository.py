"""Storage functions of user_data.db; each one is a single transaction, committed before it returns."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from session_service.domain.answers import LATE_ANSWER, SessionHead, answer_refusal, too_late
from session_service.domain.modules import closing
from session_service.domain.scores import Scorer
from session_service.domain.states import STATE_FINISHED, STATE_IN_PROGRESS, STATUS_EXPIRED, STATUS_OPEN
from session_service.storage import content
from session_service.storage.engine import Database
from session_service.storage.models import (
    AdvanceRequest,
    AuditEvent,
    Enrolment,
    Event,
    ExamSession,
    Module,
    ModuleItem,
    ModulePassage,
    Response,
    SchoolClass,
    User,
)
from session_service.storage.scores import delete_session_scores, score_closed_sections, score_documents
from toefl_core.errors import Aborted, AlreadyExists, DomainError, FailedPrecondition, NotFound


@dataclass(frozen=True)
class UserRecord:
    user_id: str
    username: str
    display_name: str
    role: str
    create_ms: int
    erased: bool


@dataclass(frozen=True)
class ClassRecord:
    class_id: str
    name: str
    teacher_id: str
    student_ids: tuple[str, ...]


@dataclass(frozen=True)
class ModuleRecord:
    module_id: str
    session_id: str
    sequence: int
    plan_key: str
    section: str
    stage: str
    status: str
    seed: int
    start_ms: int
    deadline_ms: int
    close_ms: int | None
    theta: float | None
    theta_se: float | None
    routing_decision: str | None
    item_count: int
    answered_count: int


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    student_id: str
    scope: str
    section: str
    state: str
    blueprint_version: str
    current_module_id: str | None
    create_ms: int
    finish_ms: int | None
    modules: tuple[ModuleRecord, ...]

    @property
    def current_module(self) -> ModuleRecord | None:
        return next((m for m in self.modules if m.module_id == self.current_module_id), None)


@dataclass(frozen=True)
class PinnedItem:
    item_id: str
    revision: int
    task_type: str
    full_item: bytes


@dataclass(frozen=True)
class ModuleContent:
    """A module's items (FULL view, pinned revisions, presentation order) and passages, serialized."""

    module_id: str
    items: tuple[PinnedItem, ...]
    passages: tuple[bytes, ...]


@dataclass(frozen=True)
class ResponseRecord:
    response_id: int
    session_id: str
    module_id: str
    item_id: str
    revision: int
    answer_json: str
    request_id: str
    elapsed_ms: int
    saved_ms: int


@dataclass(frozen=True)
class SubmitOutcome:
    response: ResponseRecord
    replayed: bool
    deadline_ms: int


@dataclass(frozen=True)
class NewModule:
    """A module assembled by item_service, ready to be stored with everything needed to replay it."""

    module_id: str
    sequence: int
    plan_key: str
    section: str
    stage: str
    seed: int
    assembly_record: bytes
    start_ms: int
    deadline_ms: int
    items: tuple[PinnedItem, ...]
    # (passage_id, serialized FULL passage) in presentation order.
    passages: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class RouterScore:
    theta: float
    theta_se: float
    decision: str
    # The newest response the estimate saw; a later one means the score is stale.
    scored_through: int


@dataclass(frozen=True)
class NewEvent:
    event_type: str
    item_id: str
    detail: str
    client_ms: int | None


@dataclass(frozen=True)
class EraseCounts:
    sessions: int
    responses: int
    events: int
    audit_id: str


def _user(row: User) -> UserRecord:
    return UserRecord(
        user_id=row.user_id,
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        create_ms=row.create_ms,
        erased=row.erased,
    )


def _response(row: Row[Any]) -> ResponseRecord:
    """Of a plain row of the responses table."""
    return ResponseRecord(
        response_id=row.response_id,
        session_id=row.session_id,
        module_id=row.module_id,
        item_id=row.item_id,
        revision=row.revision,
        answer_json=row.answer_json,
        request_id=row.request_id,
        elapsed_ms=row.elapsed_ms,
        saved_ms=row.saved_ms,
    )


# ---- accounts and classes


def create_user(
    db: Database,
    *,
    user_id: str,
    username: str,
    display_name: str,
    role: str,
    password_hash: str,
    now_ms: int,
    class_id: str | None = None,
) -> UserRecord:
    try:
        with db.writing() as s:
            if class_id and s.get(SchoolClass, class_id) is None:
                raise NotFound(f"class {class_id} not found")
            row = User(
                user_id=user_id,
                username=username,
                display_name=display_name,
                role=role,
                password_hash=password_hash,
                create_ms=now_ms,
                erased=False,
            )
            s.add(row)
            s.flush()
            if class_id:
                s.add(Enrolment(class_id=class_id, student_id=user_id))
            return _user(row)
    except IntegrityError as exc:
        raise AlreadyExists(f"the username {username!r} is taken") from exc


def get_user(db: Database, *, user_id: str) -> UserRecord | None:
    with db.reading() as s:
        row = s.get(User, user_id)
        return _user(row) if row is not None else None


def get_credentials(db: Database, *, username: str) -> tuple[UserRecord, str] | None:
    with db.reading() as s:
        row = s.scalars(select(User).where(User.username == username, User.erased.is_(False))).first()
        return (_user(row), row.password_hash) if row is not None else None


def set_password(db: Database, *, user_id: str, password_hash: str) -> None:
    with db.writing() as s:
        s.execute(update(User).where(User.user_id == user_id).values(password_hash=password_hash))


def _class_records(s: Session, rows: Sequence[SchoolClass]) -> list[ClassRecord]:
    ids = [r.class_id for r in rows]
    members: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        enrolled = s.execute(
            select(Enrolment.class_id, Enrolment.student_id)
            .where(Enrolment.class_id.in_(ids))
            .order_by(Enrolment.student_id)
        )
        for class_id, student_id in enrolled:
            members[class_id].append(student_id)
    return [
        ClassRecord(
            class_id=r.class_id, name=r.name, teacher_id=r.teacher_id, student_ids=tuple(members[r.class_id])
        )
        for r in rows
    ]


def create_class(db: Database, *, class_id: str, name: str, teacher_id: str, now_ms: int) -> ClassRecord:
    with db.writing() as s:
        teacher = s.get(User, teacher_id)
        if teacher is None or teacher.role != "teacher" or teacher.erased:
            raise FailedPrecondition(f"user {teacher_id} is not a teacher")
        row = SchoolClass(class_id=class_id, name=name, teacher_id=teacher_id, create_ms=now_ms)
        s.add(row)
        s.flush()
        return _class_records(s, [row])[0]


def get_class(db: Database, *, class_id: str) -> ClassRecord | None:
    with db.reading() as s:
        row = s.get(SchoolClass, class_id)
        return _class_records(s, [row])[0] if row is not None else None


def find_class(db: Database, *, teacher_id: str, name: str) -> ClassRecord | None:
    with db.reading() as s:
        row = s.scalars(
            select(SchoolClass).where(SchoolClass.teacher_id == teacher_id, SchoolClass.name == name)
        ).first()
        return _class_records(s, [row])[0] if row is not None else None


def enrol(db: Database, *, class_id: str, student_id: str) -> None:
    with db.writing() as s:
        student = s.get(User, student_id)
        if student is None or student.role != "student":
            raise FailedPrecondition(f"user {student_id} is not a student")
        if s.get(Enrolment, (class_id, student_id)) is None:
            s.add(Enrolment(class_id=class_id, student_id=student_id))


def list_classes(db: Database, *, teacher_id: str | None, after_class_id: str, limit: int) -> list[ClassRecord]:
    with db.reading() as s:
        query = select(SchoolClass).where(SchoolClass.class_id > after_class_id)
        if teacher_id is not None:
            query = query.where(SchoolClass.teacher_id == teacher_id)
        rows = s.scalars(query.order_by(SchoolClass.class_id).limit(limit)).all()
        return _class_records(s, rows)


def teaches(db: Database, *, teacher_id: str, student_id: str) -> bool:
    with db.reading() as s:
        found = s.execute(
            select(Enrolment.student_id)
            .join(SchoolClass, SchoolClass.class_id == Enrolment.class_id)
            .where(SchoolClass.teacher_id == teacher_id, Enrolment.student_id == student_id)
            .limit(1)
        ).first()
        return found is not None


# ---- sessions and modules


_MODULE_COLUMNS = (
    Module.module_id,
    Module.session_id,
    Module.sequence,
    Module.plan_key,
    Module.section,
    Module.stage,
    Module.status,
    Module.seed,
    Module.start_ms,
    Module.deadline_ms,
    Module.close_ms,
    Module.theta,
    Module.theta_se,
    Module.routing_decision,
)
_SESSION_COLUMNS = (
    ExamSession.session_id,
    ExamSession.student_id,
    ExamSession.scope,
    ExamSession.section,
    ExamSession.state,
    ExamSession.blueprint_version,
    ExamSession.current_module_id,
    ExamSession.create_ms,
    ExamSession.finish_ms,
)


# Statements of the reads and writes every answer, advance and finish runs, built once: for one session, building
# a statement and its cache key costs more than the rows it reads.
# Each module with its item and answered counts in one statement (correlated counts, both on an index).
_ITEM_COUNT = (
    select(func.count()).where(ModuleItem.module_id == Module.module_id).correlate(Module).scalar_subquery()
)
_ANSWERED_COUNT = (
    select(func.count(func.distinct(Response.item_id)))
    .where(Response.module_id == Module.module_id)
    .correlate(Module)
    .scalar_subquery()
)
# A module's columns as _module_record reads them: prefixed, so that they can stand beside a session's.
_MODULE_RECORD_COLUMNS = (
    *(column.label(f"m_{column.key}") for column in _MODULE_COLUMNS if column.key != "session_id"),
    _ITEM_COUNT.label("item_count"),
    _ANSWERED_COUNT.label("answered_count"),
)
_MODULES_OF = (
    select(Module.session_id, *_MODULE_RECORD_COLUMNS)
    .where(Module.session_id.in_(bindparam("session_ids", expanding=True)))
    .order_by(Module.session_id, Module.sequence)
)
# A session and its modules (with their counts) in one statement: the read of every advance and finish reply.
_SESSION_WITH_MODULES = (
    select(*_SESSION_COLUMNS, *_MODULE_RECORD_COLUMNS)
    .outerjoin(Module, Module.session_id == ExamSession.session_id)
    .where(ExamSession.session_id == bindparam("session_id"))
    .order_by(Module.sequence)
)
_LOCKED_SESSION_STATE = (
    select(ExamSession.state, ExamSession.current_module_id)
    .where(ExamSession.session_id == bindparam("session_id"))
    .with_for_update()
)
_ADVANCE_DONE = select(AdvanceRequest.request_id).where(
    AdvanceRequest.session_id == bindparam("session_id"), AdvanceRequest.request_id == bindparam("request_id")
)
_MODULE_STATUS = select(Module.status, Module.deadline_ms).where(Module.module_id == bindparam("module_id"))
_NEWEST_IN_MODULE = select(func.max(Response.response_id)).where(Response.module_id == bindparam("module_id"))
_OPEN_MODULES_OF = select(Module.module_id, Module.deadline_ms).where(
    Module.session_id == bindparam("session_id"), Module.status == STATUS_OPEN
)
# Core UPDATEs whose SET clause is the columns named in each call's parameters (the_*: the row to update).
# Executed on the Core connection, so they are plain statements there, whatever entity they name.
_UPDATE_MODULE = update(Module).where(Module.module_id == bindparam("the_module_id"))
_UPDATE_SESSION = update(ExamSession).where(ExamSession.session_id == bindparam("the_session_id"))
_INSERT_MODULE = insert(Module)
_INSERT_MODULE_ITEMS = insert(ModuleItem)
_INSERT_MODULE_PASSAGES = insert(ModulePassage)
_INSERT_ADVANCE = insert(AdvanceRequest)
_SEEN_ITEMS = (
    select(ModuleItem.item_id)
    .join(Module, Module.module_id == ModuleItem.module_id)
    .where(Module.session_id == bindparam("session_id"))
)
_LATEST_REVISIONS = (
    select(Response.item_id, func.max(Response.revision).label("revision"))
    .where(Response.module_id == bindparam("module_id"))
    .group_by(Response.item_id)
    .subquery()
)
_LATEST_RESPONSES = (
    select(Response)
    .join(
        _LATEST_REVISIONS,
        (Response.item_id == _LATEST_REVISIONS.c.item_id) & (Response.revision == _LATEST_REVISIONS.c.revision),
    )
    .where(Response.module_id == bindparam("module_id"))
    .order_by(Response.response_id)
)


def _module_record(row: Row[Any], session_id: str) -> ModuleRecord:
    """The module of a row holding _MODULE_RECORD_COLUMNS."""
    return ModuleRecord(
        module_id=row.m_module_id,
        session_id=session_id,
        sequence=row.m_sequence,
        plan_key=row.m_plan_key,
        section=row.m_section,
        stage=row.m_stage,
        status=row.m_status,
        seed=row.m_seed,
        start_ms=row.m_start_ms,
        deadline_ms=row.m_deadline_ms,
        close_ms=row.m_close_ms,
        theta=row.m_theta,
        theta_se=row.m_theta_se,
        routing_decision=row.m_routing_decision,
        item_count=row.item_count,
        answered_count=row.answered_count,
    )


def _module_records(s: Session | Connection, session_ids: Collection[str]) -> dict[str, list[ModuleRecord]]:
    if not session_ids:
        return {}
    # Columns, not ORM objects (and never the assembly record's bytes): this runs at every read of a session.
    result: dict[str, list[ModuleRecord]] = {sid: [] for sid in session_ids}
    for row in s.execute(_MODULES_OF, {"session_ids": list(session_ids)}).all():
        result[row.session_id].append(_module_record(row, row.session_id))
    return result


def _session_record(row: Any, modules: Iterable[ModuleRecord]) -> SessionRecord:
    """The record of a session row (an ORM object or a row holding _SESSION_COLUMNS) and its modules."""
    return SessionRecord(
        session_id=row.session_id,
        student_id=row.student_id,
        scope=row.scope,
        section=row.section,
        state=row.state,
        blueprint_version=row.blueprint_version,
        current_module_id=row.current_module_id,
        create_ms=row.create_ms,
        finish_ms=row.finish_ms,
        modules=tuple(modules),
    )


def _session_records(s: Session | Connection, rows: Sequence[Any]) -> list[SessionRecord]:
    """Records of session rows: ORM objects or rows of _SESSION_COLUMNS (read by attribute name either way)."""
    modules = _module_records(s, [r.session_id for r in rows])
    return [_session_record(r, modules.get(r.session_id, ())) for r in rows]


def _add_module(s: Session, session_id: str, module: NewModule) -> None:
    # A plain INSERT, after flushing what the caller added (a new session the module belongs to).
    s.flush()
    connection = s.connection()
    connection.execute(
        _INSERT_MODULE,
        {
            "module_id": module.module_id,
            "session_id": session_id,
            "sequence": module.sequence,
            "plan_key": module.plan_key,
            "section": module.section,
            "stage": module.stage,
            "status": STATUS_OPEN,
            "seed": module.seed,
            "assembly_record": module.assembly_record,
            "start_ms": module.start_ms,
            "deadline_ms": module.deadline_ms,
        },
    )
    # Items and passages are stored once per distinct content: after the first few students, an advance writes
    # only the module's small rows, not its items' bytes again.
    item_digests = content.store(connection, [item.full_item for item in module.items])
    passage_digests = content.store(connection, [data for _, data in module.passages])
    # Bulk INSERTs (one statement each), not ORM objects: the unit of work costs more than the rows themselves,
    # and this runs on the single writer at every advance.
    connection.execute(
        _INSERT_MODULE_ITEMS,
        [
            {
                "module_id": module.module_id,
                "item_id": item.item_id,
                "position": position,
                "revision": item.revision,
                "task_type": item.task_type,
                "content_digest": digest,
            }
            for position, (item, digest) in enumerate(zip(module.items, item_digests, strict=True))
        ],
    )
    if module.passages:
        connection.execute(
            _INSERT_MODULE_PASSAGES,
            [
                {
                    "module_id": module.module_id,
                    "passage_id": passage_id,
                    "position": position,
                    "content_digest": digest,
                }
                for position, ((passage_id, _), digest) in enumerate(
                    zip(module.passages, passage_digests, strict=True)
                )
            ],
        )


_SESSION_HEAD = (
    select(
        ExamSession.student_id,
        ExamSession.state,
        ExamSession.current_module_id,
        Module.sequence,
        Module.status,
        Module.deadline_ms,
    )
    .outerjoin(Module, Module.module_id == ExamSession.current_module_id)
    .where(ExamSession.session_id == bindparam("session_id"))
)


def session_head(db: Database, *, session_id: str) -> SessionHead | None:
    # This and the other one-statement lookups below run outside a transaction on SQLite (read_statement).
    with db.read_statement() as conn:
        row = conn.execute(_SESSION_HEAD, {"session_id": session_id}).first()
    if row is None:
        return None
    return _head(session_id, row)


def _head(session_id: str, row: Sequence[Any]) -> SessionHead:
    """The head of a row of (student_id, state, current module id, its sequence, status and deadline)."""
    student_id, state, module_id, sequence, status, deadline_ms = row
    return SessionHead(
        session_id=session_id,
        student_id=student_id,
        state=state,
        module_id=module_id,
        module_sequence=sequence or 0,
        module_status=status or "",
        deadline_ms=deadline_ms or 0,
    )


def find_session_by_request(db: Database, *, student_id: str, request_id: str) -> SessionRecord | None:
    with db.reading() as s:
        row = s.scalars(
            select(ExamSession).where(ExamSession.student_id == student_id, ExamSession.request_id == request_id)
        ).first()
        return _session_records(s, [row])[0] if row is not None else None


def insert_session(
    db: Database,
    *,
    session_id: str,
    student_id: str,
    scope: str,
    section: str,
    blueprint_version: str,
    request_id: str | None,
    created_by: str,
    now_ms: int,
    first_module: NewModule,
) -> tuple[SessionRecord, bool]:
    """The new session and True, or, when a concurrent call with the same request id won, that one and False."""
    try:
        with db.writing() as s:
            student = s.get(User, student_id)
            if student is None or student.role != "student" or student.erased:
                raise NotFound(f"student {student_id} not found")
            s.add(
                ExamSession(
                    session_id=session_id,
                    student_id=student_id,
                    scope=scope,
                    section=section,
                    state=STATE_IN_PROGRESS,
                    blueprint_version=blueprint_version,
                    request_id=request_id,
                    created_by=created_by,
                    current_module_id=first_module.module_id,
                    create_ms=now_ms,
                )
            )
            s.flush()
            _add_module(s, session_id, first_module)
    except IntegrityError:
        if request_id is None:
            raise
        existing = find_session_by_request(db, student_id=student_id, request_id=request_id)
        if existing is None:
            raise
        return existing, False
    found = get_session(db, session_id=session_id)
    assert found is not None
    return found, True


def get_session(db: Database, *, session_id: str) -> SessionRecord | None:
    # One statement: on SQLite it is its own snapshot, so no transaction is opened around it.
    with db.read_statement() as conn:
        rows = conn.execute(_SESSION_WITH_MODULES, {"session_id": session_id}).all()
    if not rows:
        return None
    first = rows[0]
    # A session with no module yet has one row, its module columns NULL (the outer join).
    return _session_record(first, (_module_record(r, first.session_id) for r in rows if r.m_module_id is not None))


def list_sessions(
    db: Database,
    *,
    student_ids: Collection[str] | None,
    state: str | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[SessionRecord]:
    """Newest first; `student_ids` None means every student, `after` is the (create_ms, id) of the last seen."""
    with db.reading() as s:
        query = select(ExamSession)
        if student_ids is not None:
            if not student_ids:
                return []
            query = query.where(ExamSession.student_id.in_(student_ids))
        if state is not None:
            query = query.where(ExamSession.state == state)
        if after is not None:
            create_ms, session_id = after
            query = query.where(tuple_(ExamSession.create_ms, ExamSession.session_id) < (create_ms, session_id))
        rows = s.scalars(
            query.order_by(ExamSession.create_ms.desc(), ExamSession.session_id.desc()).limit(limit)
        ).all()
        return _session_records(s, rows)


def teacher_student_ids(db: Database, *, teacher_id: str) -> list[str]:
    with db.reading() as s:
        return list(
            s.scalars(
                select(Enrolment.student_id)
                .join(SchoolClass, SchoolClass.class_id == Enrolment.class_id)
                .where(SchoolClass.teacher_id == teacher_id)
                .distinct()
            ).all()
        )


def module_content(db: Database, *, module_id: str) -> ModuleContent:
    with db.reading() as s:
        items = s.execute(
            select(ModuleItem.item_id, ModuleItem.revision, ModuleItem.task_type, ModuleItem.content_digest)
            .where(ModuleItem.module_id == module_id)
            .order_by(ModuleItem.position)
        ).all()
        passages = s.scalars(
            select(ModulePassage.content_digest)
            .where(ModulePassage.module_id == module_id)
            .order_by(ModulePassage.position)
        ).all()
        bodies = content.bodies_of(s, [row[3] for row in items] + list(passages))
        return ModuleContent(
            module_id=module_id,
            items=tuple(
                PinnedItem(item_id=i, revision=r, task_type=t, full_item=bodies[d]) for i, r, t, d in items
            ),
            passages=tuple(bodies[d] for d in passages),
        )


def seen_item_ids(db: Database, *, session_id: str) -> list[str]:
    with db.read_statement() as conn:
        return list(conn.scalars(_SEEN_ITEMS, {"session_id": session_id}).all())


def latest_responses(db: Database, *, module_id: str) -> list[ResponseRecord]:
    """The latest revision of the answer to each item of the module."""
    with db.read_statement() as conn:
        return [_response(r) for r in conn.execute(_LATEST_RESPONSES, {"module_id": module_id}).all()]


def expire_due(db: Database, *, now_ms: int, scorer: Scorer, session_id: str | None = None) -> int:
    """Close (EXPIRED) every open module whose deadline has passed; what was saved stays. Returns how many.

    A section closed by an expiry is scored in the same transaction.
    """
    with db.writing() as s:
        due = select(Module.module_id, Module.session_id).where(
            Module.status == STATUS_OPEN, Module.deadline_ms <= now_ms
        )
        if session_id is not None:
            due = due.where(Module.session_id == session_id)
        expiring = s.execute(due).all()
        if not expiring:
            return 0
        s.execute(
            update(Module)
            .where(Module.module_id.in_([module_id for module_id, _ in expiring]))
            .values(status=STATUS_EXPIRED, close_ms=Module.deadline_ms)
        )
        for affected in sorted({sid for _, sid in expiring}):
            score_closed_sections(s, session_id=affected, scorer=scorer, now_ms=now_ms)
        return len(expiring)


_RESPONSE_COLUMNS = (
    Response.response_id,
    Response.session_id,
    Response.module_id,
    Response.item_id,
    Response.revision,
    Response.answer_json,
    Response.request_id,
    Response.elapsed_ms,
    Response.saved_ms,
)
# The hot path of an exam: statements built once, in Core (no ORM unit of work), parameters bound per call.
_FIND_SUBMISSION = (
    select(*_RESPONSE_COLUMNS, Module.deadline_ms)
    .join(Module, Module.module_id == Response.module_id)
    .where(Response.session_id == bindparam("session_id"), Response.request_id == bindparam("request_id"))
)
_LOCK_CURRENT = (
    select(
        ExamSession.student_id,
        ExamSession.state,
        ExamSession.current_module_id,
        Module.sequence,
        Module.status,
        Module.deadline_ms,
    )
    .join(Module, Module.module_id == bindparam("module_id"))
    .where(ExamSession.session_id == bindparam("session_id"))
    .with_for_update()
)
_LAST_REVISION = select(func.max(Response.revision)).where(
    Response.module_id == bindparam("module_id"), Response.item_id == bindparam("item_id")
)
_INSERT_RESPONSE = insert(Response).returning(Response.response_id)
_EXPIRE_MODULE = (
    update(Module)
    .where(Module.module_id == bindparam("expiring_module_id"), Module.status == STATUS_OPEN)
    .values(status=STATUS_EXPIRED, close_ms=Module.deadline_ms)
)


def _submission(conn: Connection, session_id: str, request_id: str) -> SubmitOutcome | None:
    row = conn.execute(_FIND_SUBMISSION, {"session_id": session_id, "request_id": request_id}).first()
    if row is None:
        return None
    *fields, deadline_ms = row
    return SubmitOutcome(response=ResponseRecord(*fields), replayed=True, deadline_ms=deadline_ms)


def find_submission(db: Database, *, session_id: str, request_id: str) -> SubmitOutcome | None:
    with db.read_statement() as conn:
        return _submission(conn, session_id, request_id)


@dataclass(frozen=True)
class Submission:
    """One answer to store; `module_id` is the module the caller validated it against."""

    session_id: str
    module_id: str
    item_id: str
    request_id: str
    answer_json: str
    elapsed_ms: int
    received_ms: int


def _submit_one(conn: Connection, sub: Submission, scorer: Scorer) -> SubmitOutcome | DomainError:
    replay = _submission(conn, sub.session_id, sub.request_id)
    if replay is not None:
        return replay
    current = conn.execute(_LOCK_CURRENT, {"session_id": sub.session_id, "module_id": sub.module_id}).first()
    if current is None:
        return NotFound(f"session {sub.session_id} not found")
    head = _head(sub.session_id, current)
    refusal = answer_refusal(head, module_id=sub.module_id, item_id=sub.item_id)
    if refusal is not None:
        return refusal
    if too_late(head, sub.received_ms):
        # Close the module for good (kept when the transaction commits), and refuse the late answer.
        conn.execute(_EXPIRE_MODULE, {"expiring_module_id": sub.module_id})
        # Rare (a late answer found the deadline passed): the section it closes is scored with the expiry.
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            score_closed_sections(s, session_id=sub.session_id, scorer=scorer, now_ms=sub.received_ms)
            s.commit()
        return FailedPrecondition(LATE_ANSWER)
    previous = conn.execute(_LAST_REVISION, {"module_id": sub.module_id, "item_id": sub.item_id}).scalar()
    record = ResponseRecord(
        response_id=0,
        session_id=sub.session_id,
        module_id=sub.module_id,
        item_id=sub.item_id,
        revision=(previous or 0) + 1,
        answer_json=sub.answer_json,
        request_id=sub.request_id,
        elapsed_ms=sub.elapsed_ms,
        saved_ms=sub.received_ms,
    )
    values = {k: v for k, v in dataclasses.asdict(record).items() if k != "response_id"}
    response_id = conn.execute(_INSERT_RESPONSE, values).scalar_one()
    return SubmitOutcome(
        response=dataclasses.replace(record, response_id=response_id), replayed=False, deadline_ms=head.deadline_ms
    )


_FIND_SUBMISSIONS = (
    select(*_RESPONSE_COLUMNS, Module.deadline_ms)
    .join(Module, Module.module_id == Response.module_id)
    .where(
        Response.session_id.in_(bindparam("session_ids", expanding=True)),
        Response.request_id.in_(bindparam("request_ids", expanding=True)),
    )
)
_LOCK_SESSIONS = (
    select(
        ExamSession.session_id,
        ExamSession.student_id,
        ExamSession.state,
        ExamSession.current_module_id,
        Module.sequence,
        Module.status,
        Module.deadline_ms,
    )
    .outerjoin(Module, Module.module_id == ExamSession.current_module_id)
    .where(ExamSession.session_id.in_(bindparam("session_ids", expanding=True)))
    .order_by(ExamSession.session_id)
    .with_for_update(of=ExamSession)
)
_LAST_REVISIONS = (
    select(Response.module_id, Response.item_id, func.max(Response.revision))
    .where(
        Response.module_id.in_(bindparam("module_ids", expanding=True)),
        Response.item_id.in_(bindparam("item_ids", expanding=True)),
    )
    .group_by(Response.module_id, Response.item_id)
)
# Without `sort_by_parameter_order` SQLAlchemy sends ONE multi-row INSERT (with it, SQLite gets a row at a time);
# the rows are matched to the answers by their unique (session, request id) instead.
_INSERT_RESPONSES = insert(Response).returning(Response.response_id, Response.session_id, Response.request_id)


def _submit_batch(conn: Connection, subs: Sequence[Submission]) -> list[SubmitOutcome | DomainError] | None:
    """The whole batch in a few statements (lookups by IN, one multi-row INSERT), the same outcomes as
    `_submit_one` in order; None when an answer found its module's deadline passed (closing it is a write the
    per-answer path does)."""
    session_ids = sorted({sub.session_id for sub in subs})
    stored: dict[tuple[str, str], SubmitOutcome] = {}
    for row in conn.execute(
        _FIND_SUBMISSIONS, {"session_ids": session_ids, "request_ids": sorted({sub.request_id for sub in subs})}
    ):
        *fields, deadline_ms = row
        record = ResponseRecord(*fields)
        stored[record.session_id, record.request_id] = SubmitOutcome(
            response=record, replayed=True, deadline_ms=deadline_ms
        )
    heads = {row[0]: _head(row[0], row[1:]) for row in conn.execute(_LOCK_SESSIONS, {"session_ids": session_ids})}
    accepted = [sub for sub in subs if (sub.session_id, sub.request_id) not in stored]
    revisions: dict[tuple[str, str], int] = {}
    if accepted:
        keys = {
            "module_ids": sorted({s.module_id for s in accepted}),
            "item_ids": sorted({s.item_id for s in accepted}),
        }
        revisions = {(m, i): r for m, i, r in conn.execute(_LAST_REVISIONS, keys)}
    results: list[SubmitOutcome | DomainError | int] = []
    first: dict[tuple[str, str], int] = {}
    rows: list[ResponseRecord] = []
    for sub in subs:
        key = (sub.session_id, sub.request_id)
        if key in stored:
            results.append(stored[key])
            continue
        if key in first:
            # A duplicate of an answer earlier in this batch: its replay, once that one is inserted.
            results.append(first[key])
            continue
        head = heads.get(sub.session_id)
        if head is None:
            results.append(NotFound(f"session {sub.session_id} not found"))
            continue
        refusal = answer_refusal(head, module_id=sub.module_id, item_id=sub.item_id)
        if refusal is not None:
            results.append(refusal)
        elif too_late(head, sub.received_ms):
            return None
        else:
            revision = revisions.get((sub.module_id, sub.item_id), 0) + 1
            revisions[sub.module_id, sub.item_id] = revision
            first[key] = len(rows)
            results.append(len(rows))
            rows.append(
                ResponseRecord(
                    response_id=0,
                    session_id=sub.session_id,
                    module_id=sub.module_id,
                    item_id=sub.item_id,
                    revision=revision,
                    answer_json=sub.answer_json,
                    request_id=sub.request_id,
                    elapsed_ms=sub.elapsed_ms,
                    saved_ms=sub.received_ms,
                )
            )
    if not rows:
        return [r for r in results if not isinstance(r, int)]
    values = [{k: v for k, v in dataclasses.asdict(r).items() if k != "response_id"} for r in rows]
    ids = {(sid, rid): response_id for response_id, sid, rid in conn.execute(_INSERT_RESPONSES, values)}
    deadlines = {sid: head.deadline_ms for sid, head in heads.items()}
    inserted = [dataclasses.replace(r, response_id=ids[r.session_id, r.request_id]) for r in rows]
    outcomes: list[SubmitOutcome | DomainError] = []
    seen: set[int] = set()
    for result in results:
        if not isinstance(result, int):
            outcomes.append(result)
            continue
        record = inserted[result]
        outcomes.append(
            SubmitOutcome(response=record, replayed=result in seen, deadline_ms=deadlines[record.session_id])
        )
        seen.add(result)
    return outcomes


def submit_responses(
    db: Database, *, submissions: Sequence[Submission], scorer: Scorer
) -> list[SubmitOutcome | DomainError]:
    """Store a batch of answers in ONE transaction (one commit, one fsync).

    Per submission: its stored result, the first result of its request id (a replay, also when a duplicate sits
    earlier in the same batch), or the DomainError refusing it. Nothing is acknowledged before the commit.
    Usually a few statements for the whole batch; a batch where an answer closes its module by its deadline, or
    meets a request id stored meanwhile by another writer, is written answer by answer, each in a savepoint.
    """
    with db.write_connection() as conn:
        try:
            with conn.begin_nested():
                batched = _submit_batch(conn, submissions)
        except IntegrityError:
            batched = None
        if batched is not None:
            return batched
        results: list[SubmitOutcome | DomainError] = []
        for sub in submissions:
            savepoint = conn.begin_nested()
            try:
                outcome = _submit_one(conn, sub, scorer)
            except IntegrityError:
                savepoint.rollback()
                replay = _submission(conn, sub.session_id, sub.request_id)
                if replay is None:
                    raise
                results.append(replay)
                continue
            savepoint.commit()
            results.append(outcome)
    return results


def advance_applied(db: Database, *, session_id: str, request_id: str) -> bool:
    with db.read_statement() as conn:
        return (
            conn.execute(_ADVANCE_DONE, {"session_id": session_id, "request_id": request_id}).first() is not None
        )


def apply_advance(
    db: Database,
    *,
    session_id: str,
    request_id: str | None,
    from_module_id: str,
    now_ms: int,
    router_score: RouterScore | None,
    next_module: NewModule | None,
    scorer: Scorer,
) -> bool:
    """Close the current module and open the next one (or none after the last); False if already applied.

    A section that closes with it is scored in the same transaction.
    """
    try:
        # Plain statements, no ORM objects to flush: this is the single writer's costliest transaction.
        with db.writing() as s:
            conn = s.connection()
            row = conn.execute(_LOCKED_SESSION_STATE, {"session_id": session_id}).first()
            if row is None:
                raise NotFound(f"session {session_id} not found")
            # After the lock: on PostgreSQL a concurrent advance with this request id (another process) may
            # have committed while this one waited for the session row.
            if (
                request_id
                and conn.execute(_ADVANCE_DONE, {"session_id": session_id, "request_id": request_id}).first()
            ):
                return False
            state, current_module_id = row
            if state != STATE_IN_PROGRESS or current_module_id != from_module_id:
                raise FailedPrecondition("the session has moved on since this request started; reload it")
            status, deadline_ms = conn.execute(_MODULE_STATUS, {"module_id": from_module_id}).one()
            closes: dict[str, Any] = {}
            if status == STATUS_OPEN:
                closed = closing(deadline_ms=deadline_ms, now_ms=now_ms)
                closes.update(status=closed.status, close_ms=closed.close_ms)
            if router_score is not None:
                newest = conn.scalar(_NEWEST_IN_MODULE, {"module_id": from_module_id})
                if (newest or 0) > router_score.scored_through:
                    raise Aborted("an answer arrived while the module was being scored; advance again")
                closes.update(
                    theta=router_score.theta,
                    theta_se=router_score.theta_se,
                    routing_decision=router_score.decision,
                )
            if closes:
                conn.execute(_UPDATE_MODULE, {"the_module_id": from_module_id, **closes})
            if next_module is not None:
                _add_module(s, session_id, next_module)
            conn.execute(
                _UPDATE_SESSION,
                {
                    "the_session_id": session_id,
                    "current_module_id": next_module.module_id if next_module is not None else None,
                },
            )
            if request_id:
                conn.execute(
                    _INSERT_ADVANCE,
                    {
                        "session_id": session_id,
                        "request_id": request_id,
                        "closed_module_id": from_module_id,
                        "applied_ms": now_ms,
                    },
                )
            score_closed_sections(s, session_id=session_id, scorer=scorer, now_ms=now_ms)
            return True
    except IntegrityError:
        if request_id and advance_applied(db, session_id=session_id, request_id=request_id):
            return False
        raise


def finish_session(db: Database, *, session_id: str, now_ms: int, scorer: Scorer) -> None:
    """Close every open module and finish; the sections closed by it are scored in the same transaction."""
    with db.writing() as s:
        # Plain statements, as in apply_advance.
        conn = s.connection()
        row = conn.execute(_LOCKED_SESSION_STATE, {"session_id": session_id}).first()
        if row is None:
            raise NotFound(f"session {session_id} not found")
        if row.state == STATE_FINISHED:
            return
        for module_id, deadline_ms in conn.execute(_OPEN_MODULES_OF, {"session_id": session_id}).all():
            closed = closing(deadline_ms=deadline_ms, now_ms=now_ms)
            conn.execute(
                _UPDATE_MODULE, {"the_module_id": module_id, "status": closed.status, "close_ms": closed.close_ms}
            )
        conn.execute(
            _UPDATE_SESSION,
            {
                "the_session_id": session_id,
                "state": STATE_FINISHED,
                "finish_ms": now_ms,
                "current_module_id": None,
            },
        )
        score_closed_sections(s, session_id=session_id, scorer=scorer, now_ms=now_ms)


def log_events(db: Database, *, session_id: str, events: Sequence[NewEvent], now_ms: int) -> int:
    with db.writing() as s:
        s.add_all(
            Event(
                session_id=session_id,
                event_type=e.event_type,
                item_id=e.item_id,
                detail=e.detail,
                client_ms=e.client_ms,
                server_ms=now_ms,
            )
            for e in events
        )
    return len(events)


# ---- privacy


def export_student(db: Database, *, student_id: str) -> dict[str, Any]:
    """Everything held about one student, JSON-ready (no password hash: it is not information about them)."""
    with db.reading() as s:
        user = s.get(User, student_id)
        if user is None:
            raise NotFound(f"student {student_id} not found")
        classes = s.execute(
            select(SchoolClass.class_id, SchoolClass.name)
            .join(Enrolment, Enrolment.class_id == SchoolClass.class_id)
            .where(Enrolment.student_id == student_id)
            .order_by(SchoolClass.class_id)
        ).all()
        sessions = s.scalars(
            select(ExamSession).where(ExamSession.student_id == student_id).order_by(ExamSession.create_ms)
        ).all()
        document_sessions = []
        for session in sessions:
            modules = s.scalars(
                select(Module).where(Module.session_id == session.session_id).order_by(Module.sequence)
            ).all()
            responses = s.scalars(
                select(Response).where(Response.session_id == session.session_id).order_by(Response.response_id)
            ).all()
            events = s.scalars(
                select(Event).where(Event.session_id == session.session_id).order_by(Event.event_id)
            ).all()
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
                                for item_id, revision in s.execute(
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
                    "score_versions": score_documents(s, session.session_id),
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
            "sessions": document_sessions,
            "audit_events": [
                {
                    "audit_id": a.audit_id,
                    "actor": a.actor,
                    "action": a.action,
                    "detail": json.loads(a.detail_json),
                    "time_ms": a.time_ms,
                }
                for a in s.scalars(
                    select(AuditEvent).where(AuditEvent.target == student_id).order_by(AuditEvent.time_ms)
                )
            ],
        }


def erase_student(
    db: Database, *, student_id: str, actor: str, reason: str, audit_id: str, now_ms: int, password_hash: str
) -> EraseCounts:
    """Delete the student's sessions, responses and events, blank their personal data, and audit the erasure.

    The account row stays (anonymised, unusable: `password_hash` is a hash of a random secret nobody knows) so
    that the audit event keeps pointing at an id.
    """
    with db.writing() as s:
        user = s.get(User, student_id)
        if user is None or user.role != "student":
            raise NotFound(f"student {student_id} not found")
        session_ids = list(s.scalars(select(ExamSession.session_id).where(ExamSession.student_id == student_id)))
        responses = events = 0
        if session_ids:
            responses = s.scalar(select(func.count()).where(Response.session_id.in_(session_ids))) or 0
            events = s.scalar(select(func.count()).where(Event.session_id.in_(session_ids))) or 0
            # Explicit deletes rather than relying on ON DELETE CASCADE: the counts are reported and the
            # order is right on every backend.
            delete_session_scores(s, session_ids)
            s.execute(delete(Response).where(Response.session_id.in_(session_ids)))
            s.execute(delete(Event).where(Event.session_id.in_(session_ids)))
            s.execute(delete(AdvanceRequest).where(AdvanceRequest.session_id.in_(session_ids)))
            module_ids = select(Module.module_id).where(Module.session_id.in_(session_ids))
            s.execute(delete(ModuleItem).where(ModuleItem.module_id.in_(module_ids)))
            s.execute(delete(ModulePassage).where(ModulePassage.module_id.in_(module_ids)))
            s.execute(delete(Module).where(Module.session_id.in_(session_ids)))
            s.execute(delete(ExamSession).where(ExamSession.session_id.in_(session_ids)))
        s.execute(delete(Enrolment).where(Enrolment.student_id == student_id))
        user.username = f"erased-{student_id}"
        user.display_name = ""
        user.password_hash = password_hash
        user.erased = True
        s.add(
            AuditEvent(
                audit_id=audit_id,
                actor=actor,
                action="erase_student_data",
                target=student_id,
                detail_json=json.dumps(
                    {
                        "reason": reason,
                        "sessions_erased": len(session_ids),
                        "responses_erased": responses,
                        "events_erased": events,
                    }
                ),
                time_ms=now_ms,
            )
        )
        return EraseCounts(sessions=len(session_ids), responses=responses, events=events, audit_id=audit_id)
