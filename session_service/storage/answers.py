"""Storage of answers, the hot path of an exam: a module's latest answers, a request id's stored answer, and the
reads and writes the answer writer's unit of work runs (statements built once, on the Core connection)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from session_service.domain.answers import SessionHead
from session_service.storage.engine import Database, Tx
from session_service.storage.models import ExamSession, Module, Response
from session_service.storage.sessions import HEAD_COLUMNS, head_of
from toefl_core.storage import DriverInsert, DriverRead


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


# A response's columns in ResponseRecord's order.
_RESPONSE_COLUMNS = tuple(Response.__table__.c[field.name] for field in dataclasses.fields(ResponseRecord))
# What an insert gives: every field but the id the database assigns.
_INSERTED_FIELDS = tuple(field.name for field in dataclasses.fields(ResponseRecord) if field.name != "response_id")


def _response(row: Sequence[Any]) -> ResponseRecord:
    """Of a row of _RESPONSE_COLUMNS (by position: a router's advance reads a dozen, and by name cost more)."""
    return ResponseRecord(*row)


_LATEST_REVISIONS = (
    select(Response.item_id, func.max(Response.revision).label("revision"))
    .where(Response.module_id == bindparam("module_id"))
    .group_by(Response.item_id)
    .subquery()
)
_LATEST_RESPONSES = (
    select(*_RESPONSE_COLUMNS)
    .join(
        _LATEST_REVISIONS,
        (Response.item_id == _LATEST_REVISIONS.c.item_id) & (Response.revision == _LATEST_REVISIONS.c.revision),
    )
    .where(Response.module_id == bindparam("module_id"))
    .order_by(Response.response_id)
)
# On the driver's cursor: every router's advance reads it on the event loop, a room's together.
_LATEST_RESPONSES_READ = DriverRead(_LATEST_RESPONSES)


def latest_responses(db: Database, *, module_id: str) -> list[ResponseRecord]:
    """The latest revision of the answer to each item of the module."""
    with db.read_statement() as conn:
        return [_response(r) for r in _LATEST_RESPONSES_READ.all(conn, {"module_id": module_id})]


# The hot path of an exam: statements built once, parameters bound per call.
_FIND_SUBMISSION = (
    select(*_RESPONSE_COLUMNS, Module.deadline_ms)
    .join(Module, Module.module_id == Response.module_id)
    .where(Response.session_id == bindparam("session_id"), Response.request_id == bindparam("request_id"))
)
_LOCK_CURRENT = (
    select(*HEAD_COLUMNS)
    .join(Module, Module.module_id == bindparam("module_id"))
    .where(ExamSession.session_id == bindparam("session_id"))
    .with_for_update()
)
_LAST_REVISION = select(func.max(Response.revision)).where(
    Response.module_id == bindparam("module_id"), Response.item_id == bindparam("item_id")
)
_INSERT_RESPONSE = insert(Response).returning(Response.response_id)


def submission(conn: Connection, *, session_id: str, request_id: str) -> SubmitOutcome | None:
    """The stored answer of a request id, as its replay."""
    row = conn.execute(_FIND_SUBMISSION, {"session_id": session_id, "request_id": request_id}).first()
    if row is None:
        return None
    *fields, deadline_ms = row
    return SubmitOutcome(response=ResponseRecord(*fields), replayed=True, deadline_ms=deadline_ms)


def find_submission(db: Database, *, session_id: str, request_id: str) -> SubmitOutcome | None:
    with db.read_statement() as conn:
        return submission(conn, session_id=session_id, request_id=request_id)


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

    def record(self, *, revision: int) -> ResponseRecord:
        """The answer as stored at this revision (its response id comes with its INSERT)."""
        return ResponseRecord(
            response_id=0,
            session_id=self.session_id,
            module_id=self.module_id,
            item_id=self.item_id,
            revision=revision,
            answer_json=self.answer_json,
            request_id=self.request_id,
            elapsed_ms=self.elapsed_ms,
            saved_ms=self.received_ms,
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
    select(ExamSession.session_id, *HEAD_COLUMNS)
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
# On the driver's cursor: every group of answers runs the three on the writer.
_FIND_SUBMISSIONS_READ = DriverRead(_FIND_SUBMISSIONS)
_LOCK_SESSIONS_READ = DriverRead(_LOCK_SESSIONS)
_LAST_REVISIONS_READ = DriverRead(_LAST_REVISIONS)
# Multi-row INSERTs whose RETURNING rows are matched to the answers by their unique (session, request id).
_INSERT_RESPONSES = DriverInsert(
    insert(Response).returning(Response.response_id, Response.session_id, Response.request_id), _INSERTED_FIELDS
)


def lock_head(tx: Tx, *, session_id: str, module_id: str) -> SessionHead | None:
    """The session's head, locked until the unit of work ends, with the module the answer was given in."""
    row = tx.execute(_LOCK_CURRENT, {"session_id": session_id, "module_id": module_id}).first()
    return None if row is None else head_of(session_id, row)


def lock_heads(tx: Tx, *, session_ids: Collection[str]) -> dict[str, SessionHead]:
    """The heads of these sessions, locked until the unit of work ends (in one order: writers never deadlock)."""
    rows = _LOCK_SESSIONS_READ.all(tx, {"session_ids": sorted(session_ids)})
    return {row[0]: head_of(row[0], row[1:]) for row in rows}


def stored_submissions(
    tx: Tx, *, session_ids: Collection[str], request_ids: Collection[str]
) -> dict[tuple[str, str], SubmitOutcome]:
    """(session id, request id) -> the stored answer, as its replay, of those of these ids already stored."""
    stored: dict[tuple[str, str], SubmitOutcome] = {}
    keys = {"session_ids": sorted(session_ids), "request_ids": sorted(request_ids)}
    for row in _FIND_SUBMISSIONS_READ.all(tx, keys):
        *fields, deadline_ms = row
        record = ResponseRecord(*fields)
        stored[record.session_id, record.request_id] = SubmitOutcome(
            response=record, replayed=True, deadline_ms=deadline_ms
        )
    return stored


def last_revision(tx: Tx, *, module_id: str, item_id: str) -> int:
    """The revision of the latest answer to the item in the module (0: none yet)."""
    return tx.execute(_LAST_REVISION, {"module_id": module_id, "item_id": item_id}).scalar() or 0


def last_revisions(
    tx: Tx, *, module_ids: Collection[str], item_ids: Collection[str]
) -> dict[tuple[str, str], int]:
    """(module id, item id) -> the revision of the latest answer, for those answered in these modules."""
    keys = {"module_ids": sorted(module_ids), "item_ids": sorted(item_ids)}
    return {(m, i): r for m, i, r in _LAST_REVISIONS_READ.all(tx, keys)}


def _values(record: ResponseRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _INSERTED_FIELDS}


def insert_response(tx: Tx, *, record: ResponseRecord) -> ResponseRecord:
    """Store one answer; the record with its response id."""
    response_id = tx.execute(_INSERT_RESPONSE, _values(record)).scalar_one()
    return dataclasses.replace(record, response_id=response_id)


def insert_responses(tx: Tx, *, records: Sequence[ResponseRecord]) -> list[ResponseRecord]:
    """Store answers of distinct (session, request id) in one multi-row INSERT; the records with their ids."""
    if not records:
        return []
    rows = _INSERT_RESPONSES.rows(tx, [_values(r) for r in records])
    ids: Mapping[tuple[str, str], int] = {(sid, rid): response_id for response_id, sid, rid in rows}
    return [dataclasses.replace(r, response_id=ids[r.session_id, r.request_id]) for r in records]
