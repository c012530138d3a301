"""Storage of speaking recordings: the audio of spoken answers, by audio_ref (on the Core connection)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, or_, select

from session_service.domain.states import TASK_FINAL
from session_service.storage.engine import Database, Tx
from session_service.storage.models import ExamSession, RatingRow, RatingTask, Recording, Response


@dataclass(frozen=True)
class RecordingInfo:
    """A recording without its bytes: what an upload answers and what decides who may hear it."""

    recording_id: str
    session_id: str
    student_id: str
    module_id: str
    item_id: str
    request_id: str
    content_type: str
    byte_size: int
    sha256: str
    duration_ms: int
    create_ms: int


@dataclass(frozen=True)
class NewRecording:
    recording_id: str
    session_id: str
    module_id: str
    item_id: str
    request_id: str
    content_type: str
    sha256: str
    duration_ms: int
    create_ms: int
    data: bytes


_INFO = (
    Recording.recording_id,
    Recording.session_id,
    ExamSession.student_id,
    Recording.module_id,
    Recording.item_id,
    Recording.request_id,
    Recording.content_type,
    Recording.byte_size,
    Recording.sha256,
    Recording.duration_ms,
    Recording.create_ms,
)


def find_by_request(conn: Connection, *, session_id: str, request_id: str) -> RecordingInfo | None:
    """The recording an upload with this request id stored, if any (its replay)."""
    row = conn.execute(
        select(*_INFO)
        .join(ExamSession, ExamSession.session_id == Recording.session_id)
        .where(Recording.session_id == session_id, Recording.request_id == request_id)
    ).first()
    return None if row is None else RecordingInfo(*row)


def find_upload(db: Database, *, session_id: str, request_id: str) -> RecordingInfo | None:
    with db.read_statement() as conn:
        return find_by_request(conn, session_id=session_id, request_id=request_id)


def recording_info(db: Database, *, recording_id: str) -> RecordingInfo | None:
    with db.read_statement() as conn:
        row = conn.execute(
            select(*_INFO)
            .join(ExamSession, ExamSession.session_id == Recording.session_id)
            .where(Recording.recording_id == recording_id)
        ).first()
    return None if row is None else RecordingInfo(*row)


def recording_audio(db: Database, *, recording_id: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of a recording, as uploaded."""
    with db.read_statement() as conn:
        row = conn.execute(
            select(Recording.content_type, Recording.data).where(Recording.recording_id == recording_id)
        ).first()
    return None if row is None else (str(row[0]), bytes(row[1]))


def session_bytes(tx: Tx, *, session_id: str) -> int:
    """Bytes of audio the test holds already (the per-test limit counts them all, re-recordings included)."""
    return int(
        tx.scalar(
            select(func.coalesce(func.sum(Recording.byte_size), 0)).where(Recording.session_id == session_id)
        )
        or 0
    )


def insert_recording(tx: Tx, *, recording: NewRecording) -> None:
    tx.execute(
        insert(Recording),
        dict(
            recording_id=recording.recording_id,
            session_id=recording.session_id,
            module_id=recording.module_id,
            item_id=recording.item_id,
            request_id=recording.request_id,
            content_type=recording.content_type,
            byte_size=len(recording.data),
            sha256=recording.sha256,
            duration_ms=recording.duration_ms,
            create_ms=recording.create_ms,
            data=recording.data,
        ),
    )


def rated_by(db: Database, *, recording: RecordingInfo, rater_id: str) -> bool:
    """Whether a rater has this recording's rating task before them: a rating task of the session's answer to
    its item that names it, open (in the rater's queue) or rated by this rater."""
    with db.read_transaction() as conn:
        rows = conn.execute(
            select(Response.answer_json)
            .join(RatingTask, RatingTask.response_id == Response.response_id)
            .where(
                Response.session_id == recording.session_id,
                Response.item_id == recording.item_id,
                or_(
                    RatingTask.state != TASK_FINAL,
                    RatingTask.response_id.in_(
                        select(RatingRow.response_id).where(RatingRow.rater_id == rater_id)
                    ),
                ),
            )
        ).all()
    for (answer_json,) in rows:
        speech = json.loads(answer_json).get("speech") or {}
        if speech.get("audioRef") == recording.recording_id:
            return True
    return False


def session_recordings(conn: Connection, *, session_id: str) -> list[RecordingInfo]:
    rows = conn.execute(
        select(*_INFO)
        .join(ExamSession, ExamSession.session_id == Recording.session_id)
        .where(Recording.session_id == session_id)
        .order_by(Recording.create_ms, Recording.recording_id)
    ).all()
    return [RecordingInfo(*row) for row in rows]


def student_recordings(db: Database, *, student_id: str) -> list[RecordingInfo]:
    with db.read_transaction() as conn:
        sessions = select(ExamSession.session_id).where(ExamSession.student_id == student_id)
        rows = conn.execute(
            select(*_INFO)
            .join(ExamSession, ExamSession.session_id == Recording.session_id)
            .where(Recording.session_id.in_(sessions))
            .order_by(Recording.create_ms, Recording.recording_id)
        ).all()
    return [RecordingInfo(*row) for row in rows]


def audio_of(db: Database, *, recording_ids: Collection[str]) -> Iterator[tuple[str, bytes]]:
    """(recording id, bytes), one recording read at a time: an export never holds all of a student's audio."""
    for recording_id in recording_ids:
        found = recording_audio(db, recording_id=recording_id)
        if found is not None:
            yield recording_id, found[1]


def erase(tx: Tx, *, session_ids: Collection[str]) -> tuple[int, int]:
    """Delete these sessions' recordings; (how many, how many bytes of audio)."""
    count, size = tx.execute(
        select(func.count(), func.coalesce(func.sum(Recording.byte_size), 0)).where(
            Recording.session_id.in_(sorted(session_ids))
        )
    ).one()
    tx.execute(delete(Recording).where(Recording.session_id.in_(sorted(session_ids))))
    return int(count), int(size)
