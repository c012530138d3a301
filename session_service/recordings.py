"""The unit of work that stores a speaking recording: the session's rules checked again in the transaction."""

from __future__ import annotations

from session_service.domain.answers import answer_refusal, late_answer_error, too_late
from session_service.domain.recordings import check_test_total
from session_service.storage import answers, recordings
from session_service.storage.engine import Database
from session_service.storage.recordings import NewRecording, RecordingInfo
from toefl_core.errors import NotFound


def store(db: Database, *, recording: NewRecording, total_limit: int) -> tuple[RecordingInfo, bool]:
    """The recording stored and committed (or the one its request id stored before: replayed True), refused
    like an answer when the module closed or its deadline passed meanwhile, or when the test's recordings would
    pass `total_limit` bytes."""
    with db.unit_of_work() as tx:
        found = recordings.find_by_request(tx, session_id=recording.session_id, request_id=recording.request_id)
        if found is not None:
            return found, True
        head = answers.lock_head(tx, session_id=recording.session_id, module_id=recording.module_id)
        if head is None:
            raise NotFound(f"session {recording.session_id} not found")
        refusal = answer_refusal(head, module_id=recording.module_id, item_id=recording.item_id)
        if refusal is not None:
            raise refusal
        if too_late(head, recording.create_ms):
            raise late_answer_error()
        held = recordings.session_bytes(tx, session_id=recording.session_id)
        check_test_total(held, len(recording.data), limit=total_limit)
        recordings.insert_recording(tx, recording=recording)
    info = RecordingInfo(
        recording_id=recording.recording_id,
        session_id=recording.session_id,
        student_id=head.student_id,
        module_id=recording.module_id,
        item_id=recording.item_id,
        request_id=recording.request_id,
        content_type=recording.content_type,
        byte_size=len(recording.data),
        sha256=recording.sha256,
        duration_ms=recording.duration_ms,
        create_ms=recording.create_ms,
    )
    return info, False
