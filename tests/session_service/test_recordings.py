"""Recordings over gRPC (SQLite here, PostgreSQL in test_postgres): stored once, heard, exported, erased."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
from pathlib import Path

import grpc
from google.api import httpbody_pb2  # type: ignore[import-untyped]
from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess, child_pids, processes_ended
from tests.support.audio import WAV, WEBM_OPUS, spoken_answer
from tests.support.exam import admin, as_user, expect_code, new_user, request_id

Stub = session_service_pb2_grpc.SessionServiceStub
SPEAKING = (item_pb2.TASK_TYPE_LISTEN_AND_REPEAT, item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW)


def _speaking_session(stub: Stub) -> tuple[pb.User, pb.Session, str]:
    student = new_user(stub)
    session = stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_SPEAKING),
        metadata=as_user(student),
    )
    item_id = next(i.item_id for i in session.current_module.items if i.task_type in SPEAKING)
    return student, session, item_id


def upload_hear_export_erase(uploader: Stub, other: Stub) -> None:
    """Stored by one process, replayed, heard and erased at `other` (the same one on SQLite)."""
    student, session, item_id = _speaking_session(uploader)
    md = as_user(student)
    stored = {}
    for kind in (WEBM_OPUS, WAV):
        content_type, data = spoken_answer(kind)
        request = pb.UploadRecordingRequest(
            session_id=session.session_id,
            item_id=item_id,
            request_id=request_id(),
            audio=httpbody_pb2.HttpBody(content_type=content_type, data=data),
        )
        recording = uploader.UploadRecording(request, metadata=md)
        assert recording.sha256 == hashlib.sha256(data).hexdigest() and not recording.replayed
        again = other.UploadRecording(request, metadata=md)
        assert (again.audio_ref, again.replayed) == (recording.audio_ref, True)
        heard = other.GetRecording(pb.GetRecordingRequest(audio_ref=recording.audio_ref), metadata=md)
        assert (heard.content_type, heard.data) == (content_type, data)
        stored[recording.audio_ref] = data
    # The last one is the answer.
    answer = pb.Answer(speech=pb.SpeechResponse(audio_ref=recording.audio_ref, duration_ms=recording.duration_ms))
    submit = pb.SubmitResponseRequest(
        session_id=session.session_id, item_id=item_id, answer=answer, request_id=request_id()
    )
    assert other.SubmitResponse(submit, metadata=md).response.revision == 1
    exported = json.loads(
        other.ExportStudentData(pb.ExportStudentDataRequest(student_id=student.user_id), metadata=md).json_document
    )
    assert {r["audio_ref"] for r in exported["sessions"][0]["recordings"]} == set(stored)
    erased = other.EraseStudentData(pb.EraseStudentDataRequest(student_id=student.user_id), metadata=admin())
    assert erased.recordings_erased == 2
    assert erased.recording_bytes_erased == sum(len(d) for d in stored.values())
    for audio_ref in stored:
        gone = pb.GetRecordingRequest(audio_ref=audio_ref)
        expect_code(grpc.StatusCode.NOT_FOUND, functools.partial(other.GetRecording, gone, metadata=admin()))


def test_a_recording_is_stored_once_heard_exported_and_erased(session_stub: Stub) -> None:
    upload_hear_export_erase(session_stub, session_stub)


def _maps(pid: int) -> str:
    """The files mapped into a process: PyAV's FFmpeg shows as libavcodec."""
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _decoders(service: int) -> list[int]:
    return [pid for pid in child_pids(service) if "libavcodec" in _maps(pid)]


def test_recordings_are_decoded_in_a_worker_process_replaced_when_it_dies(
    session_proc: ServiceProcess, session_stub: Stub
) -> None:
    student, session, item_id = _speaking_session(session_stub)
    content_type, data = spoken_answer(WEBM_OPUS)

    def upload() -> pb.Recording:
        request = pb.UploadRecordingRequest(
            session_id=session.session_id,
            item_id=item_id,
            request_id=request_id(),
            audio=httpbody_pb2.HttpBody(content_type=content_type, data=data),
        )
        return session_stub.UploadRecording(request, metadata=as_user(student))

    first = upload()
    assert session_proc.proc is not None
    service = session_proc.proc.pid
    # FFmpeg is loaded in a worker the service started, never in the service itself.
    decoders = _decoders(service)
    assert decoders and "libavcodec" not in _maps(service)
    for pid in decoders:
        os.kill(pid, signal.SIGKILL)
    assert processes_ended(decoders)
    # The lost worker is replaced and the next recording decoded as the first was.
    second = upload()
    assert second.audio_ref != first.audio_ref and second.duration_ms == first.duration_ms > 0
    replaced = _decoders(service)
    assert replaced and not set(replaced) & set(decoders)
    assert "an audio decoder process stopped" in session_proc.log_text()
