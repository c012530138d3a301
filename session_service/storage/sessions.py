"""Storage of sessions and modules: reads of a session as a client sees it, and the writes of a module's life
(opened with its pinned content, closed, expired), on the Core connection."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, tuple_, update

from session_service.domain.accommodations import STANDARD, Accommodation
from session_service.domain.answers import SessionHead
from session_service.domain.modules import Closing
from session_service.domain.proctoring import SessionClock
from session_service.domain.states import STATE_FINISHED, STATE_IN_PROGRESS, STATUS_EXPIRED, STATUS_OPEN
from session_service.storage import content, pretest
from session_service.storage.engine import Conflict, Database, Tx
from session_service.storage.models import (
    AdvanceRequest,
    Event,
    EventBatch,
    ExamSession,
    Module,
    ModuleItem,
    ModulePassage,
    Response,
    User,
)
from toefl_core.errors import NotFound
from toefl_core.storage import DriverRead, DriverWrite


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
    sitting_id: str | None = None
    accommodation: Accommodation = STANDARD
    paused_ms: int | None = None
    voided_ms: int | None = None
    void_reason: str | None = None

    @property
    def current_module(self) -> ModuleRecord | None:
        return next((m for m in self.modules if m.module_id == self.current_module_id), None)

    @property
    def head(self) -> SessionHead:
        """What an answer needs to know of this session: what `session_head` reads of it."""
        current = self.current_module
        return head_of(
            self.session_id,
            (
                self.student_id,
                self.state,
                self.current_module_id,
                current.sequence if current is not None else None,
                current.status if current is not None else None,
                current.deadline_ms if current is not None else None,
                self.paused_ms,
                self.voided_ms,
            ),
        )

    def advanced(self, *, closing: Closing | None, opened: NewModule | None) -> SessionRecord:
        """This session once an advance closed its current module with `closing` (None: closed already, as this
        record shows) and opened `opened` (none after the last module): what the advance's reply shows, without
        reading the session again. The estimates the advance recorded (a router's, a section's at its close) are
        left out: no reply shows them."""
        modules = [
            dataclasses.replace(m, status=closing.status, close_ms=closing.close_ms)
            if closing is not None and m.module_id == self.current_module_id
            else m
            for m in self.modules
        ]
        if opened is not None:
            modules.append(
                ModuleRecord(
                    module_id=opened.module_id,
                    session_id=self.session_id,
                    sequence=opened.sequence,
                    plan_key=opened.plan_key,
                    section=opened.section,
                    stage=opened.stage,
                    status=STATUS_OPEN,
                    seed=opened.seed,
                    start_ms=opened.start_ms,
                    deadline_ms=opened.deadline_ms,
                    close_ms=None,
                    theta=None,
                    theta_se=None,
                    routing_decision=None,
                    item_count=len(opened.items),
                    answered_count=0,
                )
            )
        return dataclasses.replace(
            self, modules=tuple(modules), current_module_id=opened.module_id if opened is not None else None
        )


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
    # The items that fill pretest slots, counted in the pretest tally as the module is stored.
    pretest_item_ids: tuple[str, ...] = ()
    # The digests of its items' and passages' bodies found stored when it was assembled ahead
    # (content.stored_digests): its write sends only the other bodies.
    stored_digests: frozenset[str] = frozenset()

    @property
    def bodies(self) -> list[bytes]:
        """Its items' bodies, then its passages': the order `add_module` splits their digests by."""
        return [item.full_item for item in self.items] + [data for _, data in self.passages]


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
    ExamSession.sitting_id,
    ExamSession.time_multiplier,
    ExamSession.break_seconds,
    ExamSession.paused_ms,
    ExamSession.voided_ms,
    ExamSession.void_reason,
)


# The statements every answer, advance and finish runs, built once (docs/PERFORMANCE.md: "Where the time goes").
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
# A module's columns as _module_record reads them: in ModuleRecord's order but for its session id (the caller has
# it), prefixed, so that they can stand beside a session's.
_COUNTS = {"item_count": _ITEM_COUNT, "answered_count": _ANSWERED_COUNT}
_MODULE_RECORD_COLUMNS = tuple(
    (_COUNTS[name] if name in _COUNTS else Module.__table__.c[name]).label(f"m_{name}")
    for name in (field.name for field in dataclasses.fields(ModuleRecord))
    if name != "session_id"
)
_MODULES_OF = (
    select(Module.session_id, *_MODULE_RECORD_COLUMNS)
    .where(Module.session_id.in_(bindparam("session_ids", expanding=True)))
    .order_by(Module.session_id, Module.sequence)
)
# A session and its modules (with their counts) in one statement, as _session_of reads its rows; each use adds
# which session.
_SESSIONS_WITH_MODULES = (
    select(*_SESSION_COLUMNS, *_MODULE_RECORD_COLUMNS)
    .outerjoin(Module, Module.session_id == ExamSession.session_id)
    .order_by(Module.sequence)
)
# The read of every advance and finish reply.
_SESSION_WITH_MODULES = _SESSIONS_WITH_MODULES.where(ExamSession.session_id == bindparam("session_id"))
# A start's reads, on the event loop, for each student of a class starting together: whether its request id
# started a session already (with that session's modules), and the student's sessions today (the daily limit).
_SESSION_BY_REQUEST = _SESSIONS_WITH_MODULES.where(
    ExamSession.student_id == bindparam("student_id"), ExamSession.request_id == bindparam("request_id")
)
_SESSIONS_SINCE = select(func.count()).where(
    ExamSession.student_id == bindparam("student_id"), ExamSession.create_ms >= bindparam("since_ms")
)
_LOCKED_SESSION_STATE = (
    select(ExamSession.state, ExamSession.current_module_id, ExamSession.paused_ms, ExamSession.voided_ms)
    .where(ExamSession.session_id == bindparam("session_id"))
    .with_for_update()
)
_ADVANCE_DONE = select(AdvanceRequest.request_id).where(
    AdvanceRequest.session_id == bindparam("session_id"), AdvanceRequest.request_id == bindparam("request_id")
)
# The session as an advance reads it: whether the advance's request id was applied before, in the same snapshot.
_SESSION_BEFORE_ADVANCE = _SESSION_WITH_MODULES.add_columns(_ADVANCE_DONE.exists().label("advance_done"))
# Run on the driver's cursor: a room's answers and advances make these reads on the event loop together.
_SESSION_WITH_MODULES_READ = DriverRead(_SESSION_WITH_MODULES)
_SESSION_BEFORE_ADVANCE_READ = DriverRead(_SESSION_BEFORE_ADVANCE)
_NEWEST_ANSWER = (
    select(func.max(Response.response_id)).where(Response.module_id == Module.module_id).correlate(Module)
).scalar_subquery()
# Whether an advance's request id was applied already, and the module it leaves with its newest answer (NULLs: no
# such module in the session): one statement, on the writer every answer waits for.
_MODULE_LEFT = (
    select(
        _ADVANCE_DONE.exists().label("advance_done"),
        Module.section,
        Module.status,
        Module.deadline_ms,
        _NEWEST_ANSWER.label("newest_response_id"),
    )
    .select_from(ExamSession)
    .outerjoin(
        Module, (Module.module_id == bindparam("module_id")) & (Module.session_id == ExamSession.session_id)
    )
    .where(ExamSession.session_id == bindparam("session_id"))
)
# On the driver's cursor: every advance runs both on the writer, where every answer waits for it.
_LOCKED_SESSION_STATE_READ = DriverRead(_LOCKED_SESSION_STATE)
_MODULE_LEFT_READ = DriverRead(_MODULE_LEFT)
_OPEN_MODULES_OF = select(Module.module_id, Module.deadline_ms).where(
    Module.session_id == bindparam("session_id"), Module.status == STATUS_OPEN
)
# Core UPDATEs whose SET clause is the columns named in each call's parameters (the_*: the row to update), and
# the INSERTs of a module's opening: run on the driver's cursor, on the writer where every answer waits for them.
_UPDATE_MODULE = DriverWrite(update(Module).where(Module.module_id == bindparam("the_module_id")))
_UPDATE_SESSION = DriverWrite(update(ExamSession).where(ExamSession.session_id == bindparam("the_session_id")))
_INSERT_MODULE = DriverWrite(insert(Module))
_INSERT_MODULE_ITEMS = DriverWrite(insert(ModuleItem))
_INSERT_MODULE_PASSAGES = DriverWrite(insert(ModulePassage))
_INSERT_ADVANCE = DriverWrite(insert(AdvanceRequest))
_SEEN_ITEMS = (
    select(ModuleItem.item_id)
    .join(Module, Module.module_id == ModuleItem.module_id)
    .where(Module.session_id == bindparam("session_id"))
)


def _module_record(row: Row[*tuple[Any, ...]], session_id: str, *, at: int) -> ModuleRecord:
    """The module of a row holding _MODULE_RECORD_COLUMNS from position `at` on."""
    # By position, not by name: a session's read builds one per module, and a look-up by name cost five times more.
    return ModuleRecord(row[at], session_id, *row[at + 1 : at + len(_MODULE_RECORD_COLUMNS)])


def _module_records(conn: Connection, session_ids: Collection[str]) -> dict[str, list[ModuleRecord]]:
    if not session_ids:
        return {}
    # Columns, not ORM objects (and never the assembly record's bytes): this runs at every read of a session.
    result: dict[str, list[ModuleRecord]] = {sid: [] for sid in session_ids}
    for row in conn.execute(_MODULES_OF, {"session_ids": list(session_ids)}).all():
        result[row.session_id].append(_module_record(row, row.session_id, at=1))
    return result


def _session_record(row: Any, modules: Iterable[ModuleRecord]) -> SessionRecord:
    """The record of a row holding _SESSION_COLUMNS and its modules."""
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
        sitting_id=row.sitting_id,
        accommodation=Accommodation(time_multiplier=row.time_multiplier, break_seconds=row.break_seconds),
        paused_ms=row.paused_ms,
        voided_ms=row.voided_ms,
        void_reason=row.void_reason,
    )


def _session_records(conn: Connection, rows: Sequence[Any]) -> list[SessionRecord]:
    """Records of rows of _SESSION_COLUMNS and their modules."""
    modules = _module_records(conn, [r.session_id for r in rows])
    return [_session_record(r, modules.get(r.session_id, ())) for r in rows]


def add_module(tx: Tx, *, session_id: str, module: NewModule) -> None:
    """Store a new open module with its pinned items and passages."""
    _INSERT_MODULE.run(
        tx,
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
    digests = content.store(tx, module.bodies, stored=module.stored_digests)
    item_digests, passage_digests = digests[: len(module.items)], digests[len(module.items) :]
    # One multi-row INSERT each: an advance runs on the single writer, which every answer waits for.
    _INSERT_MODULE_ITEMS.run(
        tx,
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
    pretest.count_administrations(tx, module.pretest_item_ids)
    if module.passages:
        _INSERT_MODULE_PASSAGES.run(
            tx,
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


# A session's head as head_of reads it: the session's state and its current module (a lookup or a lock adds the
# module it joins and the sessions it names).
HEAD_COLUMNS = (
    ExamSession.student_id,
    ExamSession.state,
    ExamSession.current_module_id,
    Module.sequence,
    Module.status,
    Module.deadline_ms,
    ExamSession.paused_ms,
    ExamSession.voided_ms,
)
_SESSION_HEAD = (
    select(*HEAD_COLUMNS)
    .outerjoin(Module, Module.module_id == ExamSession.current_module_id)
    .where(ExamSession.session_id == bindparam("session_id"))
)
_SESSION_HEAD_READ = DriverRead(_SESSION_HEAD)


def session_head(db: Database, *, session_id: str) -> SessionHead | None:
    # This and the other one-statement lookups below run outside a transaction on SQLite (read_statement).
    with db.read_statement() as conn:
        row = _SESSION_HEAD_READ.first(conn, {"session_id": session_id})
    if row is None:
        return None
    return head_of(session_id, row)


def head_of(session_id: str, row: Sequence[Any]) -> SessionHead:
    """The head of a row of HEAD_COLUMNS."""
    student_id, state, module_id, sequence, status, deadline_ms, paused_ms, voided_ms = row
    return SessionHead(
        session_id=session_id,
        student_id=student_id,
        state=state,
        module_id=module_id,
        module_sequence=sequence or 0,
        module_status=status or "",
        deadline_ms=deadline_ms or 0,
        paused=paused_ms is not None,
        voided=voided_ms is not None,
    )


def find_session_by_request(db: Database, *, student_id: str, request_id: str) -> SessionRecord | None:
    # One statement: on SQLite it is its own snapshot, so no transaction is opened around it.
    with db.read_statement() as conn:
        rows = conn.execute(_SESSION_BY_REQUEST, {"student_id": student_id, "request_id": request_id}).all()
    return _session_of(rows)


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
    sitting_id: str | None = None,
    accommodation: Accommodation = STANDARD,
) -> tuple[SessionRecord, bool]:
    """The new session and True, or, when a concurrent call with the same request id won, that one and False."""
    try:
        with db.unit_of_work() as tx:
            student = tx.execute(select(User.role, User.erased).where(User.user_id == student_id)).first()
            if student is None or student.role != "student" or student.erased:
                raise NotFound(f"student {student_id} not found")
            tx.execute(
                insert(ExamSession),
                {
                    "session_id": session_id,
                    "student_id": student_id,
                    "scope": scope,
                    "section": section,
                    "state": STATE_IN_PROGRESS,
                    "blueprint_version": blueprint_version,
                    "request_id": request_id,
                    "created_by": created_by,
                    "current_module_id": first_module.module_id,
                    "create_ms": now_ms,
                    "sitting_id": sitting_id,
                    "time_multiplier": accommodation.time_multiplier,
                    "break_seconds": accommodation.break_seconds,
                },
            )
            add_module(tx, session_id=session_id, module=first_module)
    except Conflict:
        if request_id is None:
            raise
        existing = find_session_by_request(db, student_id=student_id, request_id=request_id)
        if existing is None:
            raise
        return existing, False
    found = get_session(db, session_id=session_id)
    assert found is not None
    return found, True


def count_sessions_since(db: Database, *, student_id: str, since_ms: int) -> int:
    """How many sessions the student has had started since `since_ms` (by anyone), for the daily limit."""
    with db.read_statement() as conn:
        return int(conn.execute(_SESSIONS_SINCE, {"student_id": student_id, "since_ms": since_ms}).scalar_one())


def get_session(db: Database, *, session_id: str) -> SessionRecord | None:
    # One statement: on SQLite it is its own snapshot, so no transaction is opened around it.
    with db.read_statement() as conn:
        rows = _SESSION_WITH_MODULES_READ.all(conn, {"session_id": session_id})
    return _session_of(rows)


def session_before_advance(db: Database, *, session_id: str, request_id: str) -> tuple[SessionRecord | None, bool]:
    """The session, and whether the advance with `request_id` was applied to it already (False for no id)."""
    if not request_id:
        return get_session(db, session_id=session_id), False
    with db.read_statement() as conn:
        rows = _SESSION_BEFORE_ADVANCE_READ.all(conn, {"session_id": session_id, "request_id": request_id})
    return _session_of(rows), bool(rows) and bool(rows[0].advance_done)


def _session_of(rows: Sequence[Any]) -> SessionRecord | None:
    """The record of a session's rows with its modules (none: no such session)."""
    if not rows:
        return None
    first = rows[0]
    # A session with no module yet has one row, its module columns NULL (the outer join).
    return _session_record(
        first,
        (_module_record(r, first.session_id, at=len(_SESSION_COLUMNS)) for r in rows if r.m_module_id is not None),
    )


def list_sessions(
    db: Database,
    *,
    student_ids: Collection[str] | None,
    state: str | None,
    after: tuple[int, str] | None,
    limit: int,
    sitting_id: str | None = None,
) -> list[SessionRecord]:
    """Newest first; `student_ids` None means every student, `after` is the (create_ms, id) of the last seen;
    `sitting_id`: only the sessions of that sitting."""
    with db.read_transaction() as conn:
        query = select(*_SESSION_COLUMNS)
        if student_ids is not None:
            if not student_ids:
                return []
            query = query.where(ExamSession.student_id.in_(student_ids))
        if state is not None:
            query = query.where(ExamSession.state == state)
        if sitting_id is not None:
            query = query.where(ExamSession.sitting_id == sitting_id)
        if after is not None:
            create_ms, session_id = after
            query = query.where(tuple_(ExamSession.create_ms, ExamSession.session_id) < (create_ms, session_id))
        rows = conn.execute(
            query.order_by(ExamSession.create_ms.desc(), ExamSession.session_id.desc()).limit(limit)
        ).all()
        return _session_records(conn, rows)


def seen_item_ids(db: Database, *, session_id: str) -> list[str]:
    with db.read_statement() as conn:
        return list(conn.scalars(_SEEN_ITEMS, {"session_id": session_id}).all())


def module_content(db: Database, *, module_id: str) -> ModuleContent:
    with db.read_transaction() as conn:
        items = conn.execute(
            select(ModuleItem.item_id, ModuleItem.revision, ModuleItem.task_type, ModuleItem.content_digest)
            .where(ModuleItem.module_id == module_id)
            .order_by(ModuleItem.position)
        ).all()
        passages = conn.scalars(
            select(ModulePassage.content_digest)
            .where(ModulePassage.module_id == module_id)
            .order_by(ModulePassage.position)
        ).all()
        bodies = content.bodies_of(conn, [row[3] for row in items] + list(passages))
        return ModuleContent(
            module_id=module_id,
            items=tuple(
                PinnedItem(item_id=i, revision=r, task_type=t, full_item=bodies[d]) for i, r, t, d in items
            ),
            passages=tuple(bodies[d] for d in passages),
        )


# ---- the writes of a module's life, each inside the caller's unit of work


@dataclass(frozen=True)
class LockedSession:
    state: str
    current_module_id: str | None
    paused: bool
    voided: bool


def lock_session(tx: Tx, *, session_id: str) -> LockedSession | None:
    """The session's state, current module id, pause and void, locked until the unit of work ends (None: no such
    session)."""
    row = _LOCKED_SESSION_STATE_READ.first(tx, {"session_id": session_id})
    if row is None:
        return None
    return LockedSession(row.state, row.current_module_id, row.paused_ms is not None, row.voided_ms is not None)


def lock_clock(tx: Tx, *, session_id: str) -> SessionClock | None:
    """The session as a proctor's action meets it (its current module's status and deadline), locked."""
    row = tx.execute(
        select(
            ExamSession.state,
            ExamSession.paused_ms,
            ExamSession.voided_ms,
            ExamSession.current_module_id,
            Module.status,
            Module.deadline_ms,
        )
        .outerjoin(Module, Module.module_id == ExamSession.current_module_id)
        .where(ExamSession.session_id == session_id)
        .with_for_update(of=ExamSession)
    ).first()
    if row is None:
        return None
    state, paused_ms, voided_ms, module_id, status, deadline_ms = row
    return SessionClock(
        state=state,
        paused_ms=paused_ms,
        voided_ms=voided_ms,
        module_id=module_id,
        module_status=status or "",
        deadline_ms=deadline_ms or 0,
    )


def set_pause(tx: Tx, *, session_id: str, paused_ms: int | None) -> None:
    _UPDATE_SESSION.run(tx, {"the_session_id": session_id, "paused_ms": paused_ms})


def set_deadline(tx: Tx, *, module_id: str, deadline_ms: int) -> None:
    _UPDATE_MODULE.run(tx, {"the_module_id": module_id, "deadline_ms": deadline_ms})


def mark_voided(tx: Tx, *, session_id: str, now_ms: int, reason: str) -> None:
    _UPDATE_SESSION.run(
        tx,
        {"the_session_id": session_id, "voided_ms": now_ms, "void_reason": reason, "paused_ms": None},
    )


def advance_done(conn: Connection, *, session_id: str, request_id: str) -> bool:
    return conn.execute(_ADVANCE_DONE, {"session_id": session_id, "request_id": request_id}).first() is not None


def advance_applied(db: Database, *, session_id: str, request_id: str) -> bool:
    with db.read_statement() as conn:
        return advance_done(conn, session_id=session_id, request_id=request_id)


@dataclass(frozen=True)
class ModuleLeft:
    """The module an advance leaves, as the advance's write finds it (newest_response_id 0: no answer)."""

    section: str
    status: str
    deadline_ms: int
    newest_response_id: int


def module_left(
    tx: Tx, *, module_id: str, session_id: str, request_id: str | None
) -> tuple[bool, ModuleLeft | None]:
    """Whether the session's advance with `request_id` was applied already (False for no id), and the module's
    section, status, deadline and newest answer (None: the session has no such module)."""
    [(done, section, status, deadline_ms, newest)] = _MODULE_LEFT_READ.all(
        tx, {"module_id": module_id, "session_id": session_id, "request_id": request_id or ""}
    )
    left = None
    if section is not None:
        left = ModuleLeft(section=section, status=status, deadline_ms=deadline_ms, newest_response_id=newest or 0)
    return bool(done) and bool(request_id), left


def close_module(tx: Tx, *, module_id: str, closing: Closing | None, router: RouterScore | None = None) -> None:
    """Record a module's closing and, for a router, the estimate that routed the session on."""
    values: dict[str, Any] = {}
    if closing is not None:
        values.update(status=closing.status, close_ms=closing.close_ms)
    if router is not None:
        values.update(theta=router.theta, theta_se=router.theta_se, routing_decision=router.decision)
    if values:
        _UPDATE_MODULE.run(tx, {"the_module_id": module_id, **values})


# Built once: every section close runs it, on the writer every answer waits for (building it per call cost more
# than running it).
_LAST_MODULE_OF_SECTION = (
    select(Module.module_id)
    .where(Module.session_id == bindparam("the_session_id"), Module.section == bindparam("the_section"))
    .order_by(Module.sequence.desc())
    .limit(1)
    .scalar_subquery()
)
# Parameters named apart from the columns: an UPDATE reserves a column's name for its SET clause.
_RECORD_ESTIMATE = (
    update(Module)
    .where(Module.module_id == _LAST_MODULE_OF_SECTION, Module.theta.is_(None))
    .values(theta=bindparam("the_theta"), theta_se=bindparam("the_se"))
)


def record_estimate(tx: Tx, *, session_id: str, section: str, theta: float, se: float) -> None:
    """Keep the section's estimate at its close with its last module, unless that module holds one already (a
    router closed by an advance keeps the estimate that routed it)."""
    tx.execute(
        _RECORD_ESTIMATE, {"the_session_id": session_id, "the_section": section, "the_theta": theta, "the_se": se}
    )


def open_modules(tx: Tx, *, session_id: str) -> list[tuple[str, int]]:
    """(module id, deadline) of the session's open modules."""
    return [
        (module_id, deadline) for module_id, deadline in tx.execute(_OPEN_MODULES_OF, {"session_id": session_id})
    ]


def set_current_module(tx: Tx, *, session_id: str, module_id: str | None) -> None:
    _UPDATE_SESSION.run(tx, {"the_session_id": session_id, "current_module_id": module_id})


def mark_finished(tx: Tx, *, session_id: str, now_ms: int) -> None:
    _UPDATE_SESSION.run(
        tx,
        {"the_session_id": session_id, "state": STATE_FINISHED, "finish_ms": now_ms, "current_module_id": None},
    )


def record_advance(tx: Tx, *, session_id: str, request_id: str, closed_module_id: str, now_ms: int) -> None:
    """Remember the advance's request id, so that a retry finds it applied."""
    _INSERT_ADVANCE.run(
        tx,
        {
            "session_id": session_id,
            "request_id": request_id,
            "closed_module_id": closed_module_id,
            "applied_ms": now_ms,
        },
    )


def due_modules(
    tx: Tx, *, now_ms: int, session_id: str | None = None, limit: int | None = None
) -> list[tuple[str, str]]:
    """(module id, session id) of the open modules whose deadline has passed (of one session, or all), the
    earliest deadlines first and at most `limit` of them."""
    # A paused session's clock stands still: its module's deadline moves when it resumes.
    due = (
        select(Module.module_id, Module.session_id)
        .join(ExamSession, ExamSession.session_id == Module.session_id)
        .where(Module.status == STATUS_OPEN, Module.deadline_ms <= now_ms, ExamSession.paused_ms.is_(None))
    )
    if session_id is not None:
        due = due.where(Module.session_id == session_id)
    if limit is not None:
        due = due.order_by(Module.deadline_ms).limit(limit)
    return [(module_id, sid) for module_id, sid in tx.execute(due)]


def expire_modules(tx: Tx, *, module_ids: Collection[str]) -> None:
    """Close these open modules as EXPIRED at their deadline; what was saved in them stays."""
    tx.execute(
        update(Module)
        .where(Module.module_id.in_(list(module_ids)), Module.status == STATUS_OPEN)
        .values(status=STATUS_EXPIRED, close_ms=Module.deadline_ms)
    )


# Per item of a module and per type (viewed, played), its newest event: one statement for both marks.
_MARKS = (
    select(Event.event_type, Event.item_id, func.max(Event.event_id))
    .where(
        Event.session_id == bindparam("session_id"),
        Event.event_type.in_(bindparam("types", expanding=True)),
        Event.item_id.in_(bindparam("item_ids", expanding=True)),
    )
    .group_by(Event.event_type, Event.item_id)
)


@dataclass(frozen=True)
class ItemMarks:
    """What the session's event log says of a module's items."""

    # The one named by the latest `viewed` event to arrive; "" if none.
    last_viewed: str
    # Those named by any `played` event, in the order of `item_ids`.
    played: list[str]


def item_marks(db: Database, *, session_id: str, viewed: str, played: str, item_ids: Sequence[str]) -> ItemMarks:
    """Of `item_ids` (items never repeat within a session, so a module's own items find its events), the last one
    viewed and those whose audio was played, as the session's events of types `viewed` and `played` name them."""
    if not item_ids:
        return ItemMarks(last_viewed="", played=[])
    keys = {"session_id": session_id, "types": [viewed, played], "item_ids": list(item_ids)}
    with db.read_statement() as conn:
        rows = conn.execute(_MARKS, keys).all()
    views = [(event_id, item_id) for event_type, item_id, event_id in rows if event_type == viewed]
    heard = {item_id for event_type, item_id, _ in rows if event_type == played}
    return ItemMarks(last_viewed=max(views)[1] if views else "", played=[i for i in item_ids if i in heard])


@dataclass(frozen=True)
class LoggedBatch:
    stored: int
    # True: a batch with this request id was stored before, and nothing was stored now.
    replayed: bool


_BATCH_STORED = select(EventBatch.stored).where(
    EventBatch.session_id == bindparam("session_id"), EventBatch.request_id == bindparam("request_id")
)


def stored_batch(conn: Connection, *, session_id: str, request_id: str) -> LoggedBatch | None:
    stored = conn.execute(_BATCH_STORED, {"session_id": session_id, "request_id": request_id}).scalar()
    return None if stored is None else LoggedBatch(stored=stored, replayed=True)


def log_events(
    db: Database, *, session_id: str, request_id: str | None, events: Sequence[NewEvent], now_ms: int
) -> LoggedBatch:
    """Store a batch of events, at most once per request id (a retry finds the first one's count)."""
    if not events:
        return LoggedBatch(stored=0, replayed=False)
    try:
        with db.unit_of_work() as tx:
            if request_id:
                earlier = stored_batch(tx, session_id=session_id, request_id=request_id)
                if earlier is not None:
                    return earlier
                tx.execute(
                    insert(EventBatch),
                    {
                        "session_id": session_id,
                        "request_id": request_id,
                        "stored": len(events),
                        "applied_ms": now_ms,
                    },
                )
            tx.execute(
                insert(Event),
                [
                    {
                        "session_id": session_id,
                        "event_type": e.event_type,
                        "item_id": e.item_id,
                        "detail": e.detail,
                        "client_ms": e.client_ms,
                        "server_ms": now_ms,
                    }
                    for e in events
                ],
            )
    except Conflict:
        # Another process stored the same batch meanwhile (PostgreSQL): that copy is the batch.
        if request_id:
            with db.read_statement() as conn:
                earlier = stored_batch(conn, session_id=session_id, request_id=request_id)
            if earlier is not None:
                return earlier
        raise
    return LoggedBatch(stored=len(events), replayed=False)
