"""Storage of the audit log: entries are appended and read; only an erasure re-keys a student's entries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Select, insert, select, tuple_, update

from session_service.storage.engine import Database, Tx
from session_service.storage.models import AuditEvent


@dataclass(frozen=True)
class AuditRecord:
    audit_id: str
    time_ms: int
    actor: str
    actor_role: str
    action: str
    target_type: str
    target: str
    student_id: str | None
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    student_id: str = ""
    target: str = ""
    start_ms: int | None = None
    end_ms: int | None = None


_COLUMNS = (
    AuditEvent.audit_id,
    AuditEvent.time_ms,
    AuditEvent.actor,
    AuditEvent.actor_role,
    AuditEvent.action,
    AuditEvent.target_type,
    AuditEvent.target,
    AuditEvent.student_id,
    AuditEvent.reason,
    AuditEvent.detail_json,
    AuditEvent.request_id,
)


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        audit_id=row.audit_id,
        time_ms=row.time_ms,
        actor=row.actor,
        actor_role=row.actor_role,
        action=row.action,
        target_type=row.target_type,
        target=row.target,
        student_id=row.student_id,
        reason=row.reason,
        detail=json.loads(row.detail_json or "{}"),
        request_id=row.request_id,
    )


def append(tx: Tx, entry: AuditRecord) -> None:
    """Record a staff action, in the transaction of the action itself: no action without its entry."""
    tx.execute(
        insert(AuditEvent),
        {
            "audit_id": entry.audit_id,
            "time_ms": entry.time_ms,
            "actor": entry.actor,
            "actor_role": entry.actor_role,
            "action": entry.action,
            "target_type": entry.target_type,
            "target": entry.target,
            "student_id": entry.student_id,
            "reason": entry.reason,
            "detail_json": json.dumps(entry.detail, sort_keys=True),
            "request_id": entry.request_id,
        },
    )


def by_request(conn: Connection, *, target: str, request_id: str) -> AuditRecord | None:
    """The entry of an action already taken on `target` with this request id (a retry's first answer)."""
    row = conn.execute(
        select(*_COLUMNS).where(AuditEvent.target == target, AuditEvent.request_id == request_id)
    ).first()
    return None if row is None else _record(row)


def find_by_request(db: Database, *, target: str, request_id: str) -> AuditRecord | None:
    with db.read_statement() as conn:
        return by_request(conn, target=target, request_id=request_id)


def _filtered(query: Select[*tuple[Any, ...]], where: AuditFilter) -> Select[*tuple[Any, ...]]:
    if where.actor:
        query = query.where(AuditEvent.actor == where.actor)
    if where.action:
        query = query.where(AuditEvent.action == where.action)
    if where.student_id:
        query = query.where(AuditEvent.student_id == where.student_id)
    if where.target:
        query = query.where(AuditEvent.target == where.target)
    if where.start_ms is not None:
        query = query.where(AuditEvent.time_ms >= where.start_ms)
    if where.end_ms is not None:
        query = query.where(AuditEvent.time_ms < where.end_ms)
    return query


def list_entries(
    db: Database, *, where: AuditFilter, before: tuple[int, str] | None, limit: int
) -> list[AuditRecord]:
    """Newest first; `before`: the (time, id) of the last entry seen."""
    query = _filtered(select(*_COLUMNS), where)
    if before is not None:
        query = query.where(tuple_(AuditEvent.time_ms, AuditEvent.audit_id) < before)
    query = query.order_by(AuditEvent.time_ms.desc(), AuditEvent.audit_id.desc()).limit(limit)
    with db.read_statement() as conn:
        return [_record(row) for row in conn.execute(query)]


def entries_after(
    db: Database, *, where: AuditFilter, after: tuple[int, str] | None, limit: int
) -> list[AuditRecord]:
    """Oldest first, after the (time, id) of the last entry seen: an export reads the log in such chunks."""
    query = _filtered(select(*_COLUMNS), where)
    if after is not None:
        query = query.where(tuple_(AuditEvent.time_ms, AuditEvent.audit_id) > after)
    query = query.order_by(AuditEvent.time_ms, AuditEvent.audit_id).limit(limit)
    with db.read_statement() as conn:
        return [_record(row) for row in conn.execute(query)]


def pseudonymise(tx: Tx, *, student_id: str, pseudonym: str) -> int:
    """An erased student's entries keep every fact but name a pseudonym instead of the student."""
    about = tx.execute(update(AuditEvent).where(AuditEvent.student_id == student_id).values(student_id=pseudonym))
    tx.execute(update(AuditEvent).where(AuditEvent.target == student_id).values(target=pseudonym))
    return int(about.rowcount or 0)
