"""Sittings, accommodations, proctoring and the audit log on real processes: every rule of issue 19's API."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import pytest
from google.api import httpbody_pb2  # type: ignore[import-untyped]
from google.protobuf import timestamp_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from toefl.common.v1 import audit_pb2
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import scoring_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb

from launcher.procs import ServiceProcess
from session_service.blueprint import load_blueprint
from session_service.domain.modules import now_ms
from tests.session_service.conftest import session_process
from tests.support.audio import WAV, spoken_answer
from tests.support.exam import (
    Stub,
    admin,
    answer,
    as_user,
    expect_code,
    expect_reason,
    full_items,
    new_user,
    request_id,
)
from tests.support.tokens import metadata
from toefl_core.auth import Role

FAILED = grpc.StatusCode.FAILED_PRECONDITION
DENIED = grpc.StatusCode.PERMISSION_DENIED
HOUR_MS = 3_600_000
SPEAKING = (item_pb2.TASK_TYPE_LISTEN_AND_REPEAT, item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW)


def stamp(ms: int) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromMilliseconds(ms)
    return value


@dataclass(frozen=True)
class Room:
    """A class: its teacher and two students."""

    class_id: str
    teacher: pb.User
    students: tuple[pb.User, ...]


def new_room(stub: Stub, students: int = 2) -> Room:
    teacher = new_user(stub, pb.ROLE_TEACHER)
    made = stub.CreateClass(pb.CreateClassRequest(name="Room 12", teacher_id=teacher.user_id), metadata=admin())
    return Room(made.class_id, teacher, tuple(new_user(stub, class_id=made.class_id) for _ in range(students)))


def new_sitting(
    stub: Stub,
    room: Room,
    *,
    opens_in_ms: int = -60_000,
    lasts_ms: int = HOUR_MS,
    section: item_pb2.Section.ValueType = item_pb2.SECTION_READING,
    access_code: str = "",
) -> pb.Sitting:
    now = now_ms()
    sitting = pb.Sitting(
        class_id=room.class_id,
        title="Mock exam",
        scope=pb.SESSION_SCOPE_SECTION if section else pb.SESSION_SCOPE_FULL_TEST,
        section=section,
        open_time=stamp(now + opens_in_ms),
        close_time=stamp(now + opens_in_ms + lasts_ms),
        access_code=access_code,
    )
    return stub.CreateSitting(pb.CreateSittingRequest(sitting=sitting), metadata=as_user(room.teacher))


def start(stub: Stub, student: pb.User, sitting: pb.Sitting, code: str = "") -> pb.Session:
    request = pb.CreateSessionRequest(sitting_id=sitting.sitting_id, access_code=code, request_id=request_id())
    return stub.CreateSession(request, metadata=as_user(student))


def audit(
    stub: Stub, *, student_id: str = "", action: str = "", target_id: str = ""
) -> list[audit_pb2.AuditEntry]:
    """The audit log as an admin reads it, newest first."""
    request = pb.ListAuditEntriesRequest(student_id=student_id, action=action, target_id=target_id)
    return list(stub.ListAuditEntries(request, metadata=admin()).entries)


def module_seconds(module: pb.ModuleState) -> float:
    return (module.deadline.ToMilliseconds() - module.start_time.ToMilliseconds()) / 1000


def limit_of(module: pb.ModuleState, version: str) -> int:
    blueprint = load_blueprint(version)
    stage = blueprint.section(module.section).stage(module.stage)
    return stage.time_limit_seconds


@pytest.fixture(scope="module")
def scoring(session_proc: ServiceProcess) -> Iterator[scoring_service_pb2_grpc.ScoringServiceStub]:
    with grpc.insecure_channel(session_proc.address) as channel:
        yield scoring_service_pb2_grpc.ScoringServiceStub(channel)


# ---- sittings


def test_a_sitting_opens_and_closes_its_window_and_links_its_sessions(session_stub: Stub) -> None:
    room = new_room(session_stub)
    student = room.students[0]
    early = new_sitting(session_stub, room, opens_in_ms=HOUR_MS)
    refused = expect_reason(FAILED, lambda: start(session_stub, student, early), "SITTING_NOT_OPEN", "opens at")
    assert refused.metadata["open_time"].endswith("Z")
    late = new_sitting(session_stub, room, opens_in_ms=-2 * HOUR_MS)
    expect_reason(FAILED, lambda: start(session_stub, student, late), "SITTING_CLOSED", "closed at")

    coded = new_sitting(session_stub, room, access_code="BLUE-42")
    assert coded.access_code == "BLUE-42" and coded.has_access_code
    seen = session_stub.GetSitting(pb.GetSittingRequest(sitting_id=coded.sitting_id), metadata=as_user(student))
    assert (seen.access_code, seen.has_access_code) == ("", True)
    wrong = expect_reason(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: start(session_stub, student, coded, "RED-1"),
        "ACCESS_CODE_INVALID",
    )
    assert wrong.fields == ("access_code",)
    session = start(session_stub, student, coded, "BLUE-42")
    assert session.sitting_id == coded.sitting_id
    assert (session.scope, session.section) == (pb.SESSION_SCOPE_SECTION, item_pb2.SECTION_READING)

    outsider = new_user(session_stub)
    expect_code(DENIED, lambda: start(session_stub, outsider, coded, "BLUE-42"), "another class")
    listed = session_stub.ListSessions(
        pb.ListSessionsRequest(sitting_id=coded.sitting_id), metadata=as_user(room.teacher)
    )
    assert [s.session_id for s in listed.sessions] == [session.session_id]
    # A teacher who does not teach the class neither sees nor changes its sittings.
    stranger = new_user(session_stub, pb.ROLE_TEACHER)
    get = pb.GetSittingRequest(sitting_id=coded.sitting_id)
    expect_code(DENIED, lambda: session_stub.GetSitting(get, metadata=as_user(stranger)))
    mine = session_stub.ListSittings(pb.ListSittingsRequest(), metadata=as_user(room.teacher))
    assert {s.sitting_id for s in mine.sittings} == {early.sitting_id, late.sitting_id, coded.sitting_id}
    assert not session_stub.ListSittings(pb.ListSittingsRequest(), metadata=as_user(stranger)).sittings


def test_a_sitting_is_updated_by_field_mask_and_etag(session_stub: Stub) -> None:
    room = new_room(session_stub, students=1)
    early = new_sitting(session_stub, room, opens_in_ms=HOUR_MS)
    moved = pb.Sitting(sitting_id=early.sitting_id, open_time=stamp(now_ms() - 60_000), etag=early.etag)
    update = pb.UpdateSittingRequest(
        sitting=moved, update_mask=FieldMask(paths=["open_time"]), reason="the room is free early"
    )
    updated = session_stub.UpdateSitting(update, metadata=as_user(room.teacher))
    assert updated.etag != early.etag and updated.open_time == moved.open_time
    student = as_user(room.students[0])
    retry = pb.CreateSessionRequest(sitting_id=early.sitting_id, request_id=request_id())
    first = session_stub.CreateSession(retry, metadata=student)
    assert first.sitting_id == early.sitting_id
    expect_reason(
        grpc.StatusCode.ABORTED,
        lambda: session_stub.UpdateSitting(update, metadata=as_user(room.teacher)),
        "STALE_ETAG",
    )
    bad_mask = pb.UpdateSittingRequest(sitting=moved, update_mask=FieldMask(paths=["class_id"]))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: session_stub.UpdateSitting(bad_mask, metadata=admin()))
    # Closed early: a retry of a start still gets its session; a new start is refused.
    closed = pb.Sitting(sitting_id=early.sitting_id, close_time=stamp(now_ms() - 1_000), etag=updated.etag)
    update = pb.UpdateSittingRequest(sitting=closed, update_mask=FieldMask(paths=["close_time"]))
    session_stub.UpdateSitting(update, metadata=admin())
    assert session_stub.CreateSession(retry, metadata=student).session_id == first.session_id
    expect_reason(FAILED, lambda: start(session_stub, room.students[0], updated), "SITTING_CLOSED")
    *_, entry = audit(session_stub, target_id=early.sitting_id, action="update_sitting")
    assert entry.actor_id == room.teacher.user_id and entry.reason == "the room is free early"
    assert set(json.loads(entry.detail_json)) == {"opens_ms"}
    (created,) = audit(session_stub, target_id=early.sitting_id, action="create_sitting")
    assert created.actor_role == "teacher" and "BLUE" not in created.detail_json


def test_practice_outside_sittings_follows_the_school_setting(
    item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    proc = session_process(
        tmp_path_factory.mktemp("sittings-only"),
        item_address=item_service_proc.address,
        env={"SESSION_PRACTICE_OUTSIDE_SITTINGS": "false"},
    ).start()
    try:
        with grpc.insecure_channel(proc.address) as channel:
            stub = Stub(channel)
            room = new_room(stub, students=1)
            student = room.students[0]
            practice = pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_WRITING)
            expect_reason(
                FAILED, lambda: stub.CreateSession(practice, metadata=as_user(student)), "PRACTICE_NOT_ALLOWED"
            )
            assert start(stub, student, new_sitting(stub, room)).sitting_id
    finally:
        proc.terminate()


# ---- accommodations


def test_extra_time_reaches_every_module_and_is_pinned_at_the_start(session_stub: Stub) -> None:
    room = new_room(session_stub, students=2)
    granted, standard = room.students
    grant = pb.SetAccommodationRequest(
        student_id=granted.user_id,
        accommodation=pb.Accommodation(extra_time_multiplier=1.5, break_seconds=300, reason="approved: dyslexia"),
    )
    no_reason = pb.SetAccommodationRequest(
        student_id=granted.user_id, accommodation=pb.Accommodation(extra_time_multiplier=2.0)
    )
    expect_code(
        grpc.StatusCode.INVALID_ARGUMENT, lambda: session_stub.SetAccommodation(no_reason, metadata=admin())
    )
    expect_code(DENIED, lambda: session_stub.SetAccommodation(grant, metadata=as_user(granted)))
    set_ = session_stub.SetAccommodation(grant, metadata=as_user(room.teacher))
    assert (set_.extra_time_multiplier, set_.break_seconds, set_.set_by) == (1.5, 300, room.teacher.user_id)
    sitting = new_sitting(session_stub, room, section=item_pb2.SECTION_UNSPECIFIED)
    sessions = {s.user_id: start(session_stub, s, sitting) for s in (granted, standard)}
    own = pb.GetAccommodationRequest(student_id=granted.user_id)
    assert session_stub.GetAccommodation(own, metadata=as_user(granted)).extra_time_multiplier == 1.5

    # Changed mid-test: the running session keeps the 1.5 it started with.
    later = pb.SetAccommodationRequest(
        student_id=granted.user_id,
        accommodation=pb.Accommodation(extra_time_multiplier=2.0, reason="approved: a second report"),
    )
    session_stub.SetAccommodation(later, metadata=admin())
    for student, factor, pause in ((granted, 1.5, 300), (standard, 1.0, 0)):
        session = sessions[student.user_id]
        assert session.accommodation.extra_time_multiplier == factor
        # Reading's router and second stage, then Listening's router: the break comes before a new section.
        for sequence in range(3):
            module = session.current_module
            breaks = pause if sequence == 2 else 0
            assert module.break_seconds == breaks
            assert module_seconds(module) == limit_of(module, session.blueprint_version) * factor + breaks
            session = session_stub.AdvanceModule(
                pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id()),
                metadata=as_user(student),
            )
    entries = audit(session_stub, student_id=granted.user_id, action="set_accommodation")
    assert [json.loads(e.detail_json)["extra_time_multiplier"] for e in entries] == [2.0, 1.5]
    assert [e.reason for e in entries] == ["approved: a second report", "approved: dyslexia"]


# ---- a proctor's actions


def _submit(stub: Stub, student: pb.User, session: pb.Session, item: item_pb2.Item) -> pb.SubmitResponseResponse:
    request = pb.SubmitResponseRequest(
        session_id=session.session_id,
        item_id=item.item_id,
        answer=answer(item, correct=True),
        request_id=request_id(),
    )
    return stub.SubmitResponse(request, metadata=as_user(student))


def _act(call: object, session: pb.Session, md: tuple[tuple[str, str], ...], **fields: object) -> pb.Session:
    request_type = pb.ExtendSessionRequest if "minutes" in fields else pb.ProctorActionRequest
    fields.setdefault("request_id", request_id())
    request = request_type(session_id=session.session_id, **fields)  # type: ignore[arg-type]
    reply: pb.Session = call(request, metadata=md)  # type: ignore[operator]
    return reply


def test_pause_refuses_answers_loses_nothing_and_resume_gives_back_the_exact_time(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    room = new_room(session_stub, students=1)
    student = room.students[0]
    proctor = as_user(room.teacher)
    session = start(session_stub, student, new_sitting(session_stub, room, section=item_pb2.SECTION_SPEAKING))
    items = full_items(item_stub, session.current_module.items)
    first, second = items[0], items[1]
    saved = _submit(session_stub, student, session, first).response

    # Students, and teachers of other classes, do not proctor.
    for intruder in (student, new_user(session_stub, pb.ROLE_TEACHER)):
        expect_code(DENIED, functools.partial(_act, session_stub.PauseSession, session, as_user(intruder)))
    pause_id = request_id()
    paused = _act(session_stub.PauseSession, session, proctor, request_id=pause_id, reason="fire alarm")
    assert paused.HasField("pause_time") and paused.current_module.paused
    again = _act(session_stub.PauseSession, session, proctor, request_id=pause_id, reason="fire alarm")
    assert again.pause_time == paused.pause_time

    expect_reason(
        FAILED, lambda: _submit(session_stub, student, session, second), "SESSION_PAUSED", "paused by your proctor"
    )
    content_type, data = spoken_answer(WAV)
    speaking = next(i for i in items if i.task_type in SPEAKING)
    upload = pb.UploadRecordingRequest(
        session_id=session.session_id,
        item_id=speaking.item_id,
        request_id=request_id(),
        audio=httpbody_pb2.HttpBody(content_type=content_type, data=data),
    )
    expect_reason(
        FAILED, lambda: session_stub.UploadRecording(upload, metadata=as_user(student)), "SESSION_PAUSED"
    )
    advance = pb.AdvanceModuleRequest(session_id=session.session_id)
    expect_reason(FAILED, lambda: session_stub.AdvanceModule(advance, metadata=as_user(student)), "SESSION_PAUSED")
    # The clock stands still: the time left reads the same however often it is read.
    looked = session_stub.GetCurrentModule(
        pb.GetCurrentModuleRequest(session_id=session.session_id), metadata=as_user(student)
    )
    assert looked.paused and looked.remaining_seconds == paused.current_module.remaining_seconds
    assert [r.request_id for r in looked.responses] == [saved.request_id]

    resumed = _act(session_stub.ResumeSession, session, proctor)
    assert not resumed.HasField("pause_time") and not resumed.current_module.paused
    pause, resume = (
        audit(session_stub, target_id=session.session_id, action=action)[0]
        for action in ("pause_session", "resume_session")
    )
    at_pause, at_resume = json.loads(pause.detail_json), json.loads(resume.detail_json)
    assert at_resume["remaining_ms"] == at_pause["remaining_ms"]
    moved = resumed.current_module.deadline.ToMilliseconds() - session.current_module.deadline.ToMilliseconds()
    assert moved == at_resume["paused_for_ms"]
    assert (pause.actor_id, pause.reason, pause.student_id) == (
        room.teacher.user_id,
        "fire alarm",
        student.user_id,
    )
    assert _submit(session_stub, student, session, second).response.revision == 1
    expect_reason(FAILED, lambda: _act(session_stub.ResumeSession, session, proctor), "SESSION_NOT_PAUSED")

    extend = functools.partial(_act, session_stub.ExtendSession, session, proctor, minutes=5)
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: extend(reason=""), "reason")
    extended = extend(reason="the headset failed")
    gained = extended.current_module.deadline.ToMilliseconds() - resumed.current_module.deadline.ToMilliseconds()
    assert gained == 5 * 60_000
    # Each action once, whatever was retried.
    actions = [e.action for e in audit(session_stub, target_id=session.session_id)]
    assert actions == ["extend_session", "resume_session", "pause_session"]


def test_void_keeps_the_data_and_withholds_the_scores(
    session_stub: Stub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
    scoring: scoring_service_pb2_grpc.ScoringServiceStub,
) -> None:
    room = new_room(session_stub, students=1)
    student = room.students[0]
    sitting = new_sitting(session_stub, room)
    kept = start(session_stub, student, sitting)
    for item in full_items(item_stub, kept.current_module.items):
        _submit(session_stub, student, kept, item)
    session_stub.FinishSession(pb.FinishSessionRequest(session_id=kept.session_id), metadata=as_user(student))
    voided = start(session_stub, student, sitting)
    for item in full_items(item_stub, voided.current_module.items)[:3]:
        _submit(session_stub, student, voided, item)
    void = functools.partial(_act, session_stub.VoidSession, voided, as_user(room.teacher))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: void(reason=""), "reason")
    done = void(reason="a phone on the desk")
    assert done.state == pb.SESSION_STATE_FINISHED and done.void_reason == "a phone on the desk"
    expect_reason(FAILED, lambda: void(reason="again"), "SESSION_VOIDED")
    item = full_items(item_stub, voided.current_module.items)[3]
    expect_reason(FAILED, lambda: _submit(session_stub, student, voided, item), "SESSION_VOIDED")

    report = pb.GetSessionRequest(session_id=voided.session_id)
    own = scoring.GetScoreReport(
        spb.GetScoreReportRequest(session_id=voided.session_id), metadata=as_user(student)
    )
    assert own.voided and not own.HasField("score")
    staff = scoring.GetScoreReport(spb.GetScoreReportRequest(session_id=voided.session_id), metadata=admin())
    assert staff.voided and staff.score.sections
    assert session_stub.GetSession(report, metadata=admin()).modules[0].answered_count == 3
    roster = scoring.GetClassRoster(spb.GetClassRosterRequest(class_id=room.class_id), metadata=admin())
    (entry,) = roster.students
    assert entry.latest_score.session_id == kept.session_id


def pause_at_one_answer_at_the_other(
    first: Stub, second: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    """Two processes on one database (the same one on SQLite): a pause taken at one refuses answers at the other,
    whose cached head of the session is stale; the same pause sent to both at once is applied once."""
    room = new_room(first, students=1)
    student = room.students[0]
    session = start(first, student, new_sitting(first, room, section=item_pb2.SECTION_WRITING))
    items = full_items(item_stub, session.current_module.items)
    # The other process answers first, so it holds the session's head in its cache.
    _submit(second, student, session, items[0])
    pause = pb.ProctorActionRequest(session_id=session.session_id, request_id=request_id(), reason="outage")
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda stub: stub.PauseSession(pause, metadata=admin()), (first, second)))
    assert replies[0].pause_time == replies[1].pause_time
    assert len(audit(first, target_id=session.session_id, action="pause_session")) == 1
    for stub in (second, first):
        expect_reason(FAILED, functools.partial(_submit, stub, student, session, items[1]), "SESSION_PAUSED")
    _act(second.ResumeSession, session, admin())
    assert _submit(first, student, session, items[1]).response.revision == 1
    module = second.GetCurrentModule(
        pb.GetCurrentModuleRequest(session_id=session.session_id), metadata=as_user(student)
    )
    assert [r.item_id for r in module.responses] == [items[0].item_id, items[1].item_id]


def test_a_pause_holds_on_every_path_to_the_database(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    pause_at_one_answer_at_the_other(session_stub, session_stub, item_stub)


def test_the_live_view_follows_start_answer_pause_and_finish(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    room = new_room(session_stub, students=2)
    working, absent = room.students
    sitting = new_sitting(session_stub, room, section=item_pb2.SECTION_WRITING)
    watch = pb.WatchSittingRequest(sitting_id=sitting.sitting_id)
    expect_code(DENIED, lambda: list(session_stub.WatchSitting(watch, metadata=as_user(working), timeout=30)))
    stream = session_stub.WatchSitting(watch, metadata=as_user(room.teacher), timeout=120)

    seats: dict[str, pb.Seat] = {}

    def seat_when(ready: Callable[[pb.Seat], bool]) -> pb.Seat:
        """The working student's seat in the first view where `ready` holds (views come only on changes, the
        first whole, then the seats that changed)."""
        for view in stream:
            assert view.full == (not seats)
            if not seats:
                assert {s.student_id for s in view.seats} == {working.user_id, absent.user_id}
            else:
                assert absent.user_id not in {s.student_id for s in view.seats}
            seats.update((s.student_id, s) for s in view.seats)
            assert seats[absent.user_id].state == pb.SEAT_STATE_NOT_STARTED
            if ready(seats[working.user_id]):
                return seats[working.user_id]
        raise AssertionError("the stream ended")

    try:
        assert seat_when(lambda s: s.state == pb.SEAT_STATE_NOT_STARTED).display_name == working.display_name
        session = start(session_stub, working, sitting)
        seat = seat_when(lambda s: s.state == pb.SEAT_STATE_IN_PROGRESS)
        assert (seat.session_id, seat.section, seat.module_sequence) == (
            session.session_id,
            item_pb2.SECTION_WRITING,
            1,
        )
        assert (seat.answered_count, seat.item_count) == (0, len(session.current_module.items))
        assert seat.remaining_seconds > 0
        item = full_items(item_stub, session.current_module.items)[0]
        _submit(session_stub, working, session, item)
        events = pb.LogEventsRequest(
            session_id=session.session_id, events=[pb.ClientEvent(type=pb.EVENT_TYPE_FOCUS_LOST)]
        )
        session_stub.LogEvents(events, metadata=as_user(working))
        seat = seat_when(lambda s: s.answered_count == 1 and s.focus_lost_count == 1)
        assert seat.last_activity_time.ToMilliseconds() >= session.create_time.ToMilliseconds()
        _act(session_stub.PauseSession, session, as_user(room.teacher))
        assert seat_when(lambda s: s.state == pb.SEAT_STATE_PAUSED).answered_count == 1
        _act(session_stub.ResumeSession, session, as_user(room.teacher))
        seat_when(lambda s: s.state == pb.SEAT_STATE_IN_PROGRESS)
        session_stub.FinishSession(
            pb.FinishSessionRequest(session_id=session.session_id), metadata=as_user(working)
        )
        assert not seat_when(lambda s: s.state == pb.SEAT_STATE_FINISHED).HasField("deadline")
    finally:
        stream.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leave a stream's cancel untyped
    # A client that wants one view asks for one; the stream then ends.
    once = pb.WatchSittingRequest(sitting_id=sitting.sitting_id, max_views=1)
    assert len(list(session_stub.WatchSitting(once, metadata=admin()))) == 1


def test_a_voided_sessions_answers_go_to_no_rater(
    session_stub: Stub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
    scoring: scoring_service_pb2_grpc.ScoringServiceStub,
) -> None:
    room = new_room(session_stub, students=2)
    sitting = new_sitting(session_stub, room, section=item_pb2.SECTION_WRITING)
    texts = {}
    for student, void in zip(room.students, (True, False), strict=True):
        session = start(session_stub, student, sitting)
        email = next(i for i in session.current_module.items if i.task_type == item_pb2.TASK_TYPE_WRITE_AN_EMAIL)
        texts[void] = f"Dear Professor, I will attend the seminar on Friday. Reference {uuid.uuid4().hex}."
        request = pb.SubmitResponseRequest(
            session_id=session.session_id,
            item_id=email.item_id,
            answer=pb.Answer(text=texts[void]),
            request_id=request_id(),
        )
        session_stub.SubmitResponse(request, metadata=as_user(student))
        if void:
            _act(session_stub.VoidSession, session, admin(), reason="left the room")
        else:
            finish = pb.FinishSessionRequest(session_id=session.session_id)
            session_stub.FinishSession(finish, metadata=as_user(student))
    rater = metadata(Role.RATER, "usr-sittings-rater")
    queue = scoring.ListRatingTasks(
        spb.ListRatingTasksRequest(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL, page_size=200), metadata=rater
    )
    shown = {task.response_text for task in queue.tasks}
    assert texts[False] in shown and texts[True] not in shown


# ---- the audit log and per-module estimates


def test_the_audit_log_is_admins_only_exported_as_json_lines_and_pseudonymised_at_erasure(
    session_stub: Stub,
) -> None:
    room = new_room(session_stub, students=1)
    student = room.students[0]
    grant = pb.SetAccommodationRequest(
        student_id=student.user_id,
        accommodation=pb.Accommodation(extra_time_multiplier=1.25, reason="approved: injury"),
    )
    session_stub.SetAccommodation(grant, metadata=as_user(room.teacher))
    session = start(session_stub, student, new_sitting(session_stub, room))
    _act(session_stub.PauseSession, session, admin(), reason="network check")
    expect_code(
        DENIED, lambda: session_stub.ListAuditEntries(pb.ListAuditEntriesRequest(), metadata=as_user(room.teacher))
    )
    about = audit(session_stub, student_id=student.user_id)
    assert [e.action for e in about] == ["pause_session", "set_accommodation"]
    lines = b"".join(
        chunk.data
        for chunk in session_stub.ExportAuditLog(
            pb.ExportAuditLogRequest(student_id=student.user_id), metadata=admin()
        )
    )
    exported = [json.loads(line) for line in lines.decode().splitlines()]
    assert [e["auditId"] for e in exported] == [e.audit_id for e in reversed(about)]
    assert exported[0]["reason"] == "approved: injury" and exported[1]["actorRole"] == "admin"
    # No RPC changes or removes an entry.
    methods = pb.DESCRIPTOR.services_by_name["SessionService"].methods_by_name
    assert {m for m in methods if "Audit" in m} == {"ListAuditEntries", "ExportAuditLog"}

    document = session_stub.ExportStudentData(
        pb.ExportStudentDataRequest(student_id=student.user_id), metadata=as_user(student)
    ).json_document
    assert json.loads(document)["accommodation"]["reason"] == "approved: injury"
    session_stub.EraseStudentData(
        pb.EraseStudentDataRequest(student_id=student.user_id, reason="request"), metadata=admin()
    )
    # The grant and its reason (health data) go with the student's data; its entry stays, re-keyed.
    left = session_stub.GetAccommodation(pb.GetAccommodationRequest(student_id=student.user_id), metadata=admin())
    assert (left.extra_time_multiplier, left.reason) == (1.0, "")
    (erasure,) = audit(session_stub, student_id=student.user_id)
    assert erasure.action == "erase_student_data"
    kept = [e for e in audit(session_stub) if e.audit_id in {a.audit_id for a in about}]
    assert len(kept) == 2 and len({e.student_id for e in kept}) == 1
    assert kept[0].student_id.startswith("anon-") and kept[1].reason == "approved: injury"


def test_the_score_report_keeps_the_estimate_after_each_module_for_staff(
    session_stub: Stub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
    scoring: scoring_service_pb2_grpc.ScoringServiceStub,
) -> None:
    student = new_user(session_stub)
    md = as_user(student)
    session = session_stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING), metadata=md
    )
    while session.HasField("current_module"):
        for item in full_items(item_stub, session.current_module.items):
            _submit(session_stub, student, session, item)
        session = session_stub.AdvanceModule(pb.AdvanceModuleRequest(session_id=session.session_id), metadata=md)
    session_stub.FinishSession(pb.FinishSessionRequest(session_id=session.session_id), metadata=md)
    request = spb.GetScoreReportRequest(session_id=session.session_id)
    estimates = scoring.GetScoreReport(request, metadata=admin()).module_estimates
    assert [e.stage for e in estimates] == ["MODULE_STAGE_ROUTER", "MODULE_STAGE_UPPER"]
    assert all(e.standard_error > 0 for e in estimates)
    report = scoring.GetScoreReport(request, metadata=admin())
    assert estimates[-1].theta == report.score.sections[0].theta
    assert not scoring.GetScoreReport(request, metadata=md).module_estimates
