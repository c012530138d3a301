"""Accounts, authorization, events, privacy and the ownership report, against a real session_service."""

from __future__ import annotations

import json
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from toefl.common.v1 import ownership_pb2, ownership_pb2_grpc
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb

from launcher.procs import ServiceProcess
from tests.support.exam import (
    PASSWORD,
    Stub,
    admin,
    answer,
    as_user,
    expect_code,
    full_items,
    new_user,
    request_id,
)
from tests.support.tokens import metadata
from toefl_core.auth import Role

DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def start(stub: Stub, student: pb.User, section: int = item_pb2.SECTION_WRITING) -> pb.Session:
    return stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=section),  # type: ignore[arg-type]
        metadata=as_user(student),
    )


def export(stub: Stub, student_id: str) -> dict[str, Any]:
    reply = stub.ExportStudentData(pb.ExportStudentDataRequest(student_id=student_id), metadata=admin())
    document: dict[str, Any] = json.loads(reply.json_document)
    return document


def test_authenticate_issues_a_token_and_hides_which_part_was_wrong(session_stub: Stub) -> None:
    student = new_user(session_stub)
    reply = session_stub.Authenticate(pb.AuthenticateRequest(username=student.username, password=PASSWORD))
    assert reply.role == pb.ROLE_STUDENT and reply.user_id == student.user_id and reply.token_type == "Bearer"
    me = session_stub.GetUser(
        pb.GetUserRequest(user_id=student.user_id), metadata=(("authorization", f"Bearer {reply.access_token}"),)
    )
    assert me.username == student.username and me.password == ""
    wrong = expect_code(
        grpc.StatusCode.UNAUTHENTICATED,
        lambda: session_stub.Authenticate(
            pb.AuthenticateRequest(username=student.username, password="nope-nope-1")
        ),
    )
    unknown = expect_code(
        grpc.StatusCode.UNAUTHENTICATED,
        lambda: session_stub.Authenticate(pb.AuthenticateRequest(username="nobody-here", password=PASSWORD)),
    )
    assert wrong.details() == unknown.details() == "invalid username or password"
    expect_code(grpc.StatusCode.UNAUTHENTICATED, lambda: session_stub.GetUser(pb.GetUserRequest(user_id="x")))
    expect_code(DENIED, lambda: new_user_as(session_stub, as_user(student)))


def new_user_as(stub: Stub, md: tuple[tuple[str, str], ...]) -> pb.User:
    request = pb.CreateUserRequest(user=pb.User(username="sneaky", role=pb.ROLE_ADMIN, password=PASSWORD))
    return stub.CreateUser(request, metadata=md)


def test_a_student_cannot_read_or_answer_another_students_session(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    owner, intruder = new_user(session_stub), new_user(session_stub)
    session = start(session_stub, owner)
    item = full_items(item_stub, session.current_module.items[:1])[0]
    md = as_user(intruder)
    sid = session.session_id
    expect_code(DENIED, lambda: session_stub.GetSession(pb.GetSessionRequest(session_id=sid), metadata=md))
    expect_code(
        DENIED, lambda: session_stub.GetCurrentModule(pb.GetCurrentModuleRequest(session_id=sid), metadata=md)
    )
    request = pb.SubmitResponseRequest(
        session_id=sid, item_id=item.item_id, answer=answer(item, correct=True), request_id=request_id()
    )
    expect_code(DENIED, lambda: session_stub.SubmitResponse(request, metadata=md))
    expect_code(DENIED, lambda: session_stub.AdvanceModule(pb.AdvanceModuleRequest(session_id=sid), metadata=md))
    expect_code(DENIED, lambda: session_stub.LogEvents(pb.LogEventsRequest(session_id=sid), metadata=md))
    expect_code(
        DENIED, lambda: session_stub.ListSessions(pb.ListSessionsRequest(student_id=owner.user_id), metadata=md)
    )
    expect_code(
        DENIED, lambda: session_stub.CreateSession(pb.CreateSessionRequest(student_id=owner.user_id), metadata=md)
    )
    expect_code(
        DENIED,
        lambda: session_stub.ExportStudentData(pb.ExportStudentDataRequest(student_id=owner.user_id), metadata=md),
    )
    rater, author = metadata(Role.RATER), metadata(Role.AUTHOR)
    expect_code(DENIED, lambda: session_stub.GetSession(pb.GetSessionRequest(session_id=sid), metadata=rater))
    expect_code(DENIED, lambda: session_stub.GetSession(pb.GetSessionRequest(session_id=sid), metadata=author))
    # The owner's own calls work, and nothing the intruder tried was stored.
    assert session_stub.SubmitResponse(request, metadata=as_user(owner)).response.revision == 1


def test_a_teacher_sees_only_their_classes(session_stub: Stub) -> None:
    teacher, other_teacher = new_user(session_stub, pb.ROLE_TEACHER), new_user(session_stub, pb.ROLE_TEACHER)
    mine = session_stub.CreateClass(pb.CreateClassRequest(name="Mine"), metadata=as_user(teacher))
    theirs = session_stub.CreateClass(
        pb.CreateClassRequest(name="Theirs", teacher_id=other_teacher.user_id), metadata=admin()
    )
    pupil = new_user(session_stub, class_id=mine.class_id)
    stranger = new_user(session_stub, class_id=theirs.class_id)
    pupil_session, stranger_session = start(session_stub, pupil), start(session_stub, stranger)
    md = as_user(teacher)

    seen = session_stub.GetSession(pb.GetSessionRequest(session_id=pupil_session.session_id), metadata=md)
    assert seen.student_id == pupil.user_id
    expect_code(
        DENIED,
        lambda: session_stub.GetSession(pb.GetSessionRequest(session_id=stranger_session.session_id), metadata=md),
    )
    listed = session_stub.ListSessions(pb.ListSessionsRequest(), metadata=md).sessions
    assert [s.session_id for s in listed] == [pupil_session.session_id]
    assert not listed[0].current_module.items, "lists carry no items"
    by_class = session_stub.ListSessions(pb.ListSessionsRequest(class_id=mine.class_id), metadata=md).sessions
    assert [s.student_id for s in by_class] == [pupil.user_id]
    expect_code(
        DENIED, lambda: session_stub.ListSessions(pb.ListSessionsRequest(class_id=theirs.class_id), metadata=md)
    )
    expect_code(
        DENIED, lambda: session_stub.ListSessions(pb.ListSessionsRequest(student_id=stranger.user_id), metadata=md)
    )
    classes = session_stub.ListClasses(pb.ListClassesRequest(), metadata=md).classes
    assert [(c.class_id, list(c.student_ids)) for c in classes] == [(mine.class_id, [pupil.user_id])]
    assert session_stub.GetUser(pb.GetUserRequest(user_id=pupil.user_id), metadata=md).username == pupil.username
    expect_code(DENIED, lambda: session_stub.GetUser(pb.GetUserRequest(user_id=stranger.user_id), metadata=md))
    # A teacher may start a session for their own pupil, not for anyone else's.
    started = session_stub.CreateSession(
        pb.CreateSessionRequest(
            student_id=pupil.user_id, scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_SPEAKING
        ),
        metadata=md,
    )
    assert started.student_id == pupil.user_id
    expect_code(
        DENIED,
        lambda: session_stub.CreateSession(
            pb.CreateSessionRequest(
                student_id=stranger.user_id, scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_SPEAKING
            ),
            metadata=md,
        ),
    )


def test_create_session_is_idempotent_and_lists_paginate(session_stub: Stub) -> None:
    student = new_user(session_stub)
    md = as_user(student)
    rid = request_id()
    request = pb.CreateSessionRequest(
        scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_SPEAKING, request_id=rid
    )
    first = session_stub.CreateSession(request, metadata=md)
    assert session_stub.CreateSession(request, metadata=md).session_id == first.session_id
    others = [start(session_stub, student).session_id for _ in range(2)]
    pages, token = [], ""
    while True:
        page = session_stub.ListSessions(pb.ListSessionsRequest(page_size=2, page_token=token), metadata=md)
        pages.append([s.session_id for s in page.sessions])
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [2, 1]
    assert sorted(sid for page in pages for sid in page) == sorted([first.session_id, *others])
    expect_code(
        INVALID,
        lambda: session_stub.ListSessions(pb.ListSessionsRequest(page_token="%%%"), metadata=md),
        "page_token",
    )
    expect_code(
        INVALID,
        lambda: session_stub.CreateSession(pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION), metadata=md),
        "section",
    )


def test_log_events_stores_a_whole_valid_batch_or_nothing(session_stub: Stub) -> None:
    student = new_user(session_stub)
    md = as_user(student)
    sid = start(session_stub, student).session_id
    good = [pb.ClientEvent(type=pb.EVENT_TYPE_FOCUS_LOST, detail="tab hidden")] * 3
    bad_type = [*good, pb.ClientEvent(type=pb.EVENT_TYPE_UNSPECIFIED)]
    error = expect_code(
        INVALID, lambda: session_stub.LogEvents(pb.LogEventsRequest(session_id=sid, events=bad_type), metadata=md)
    )
    assert "event 3" in (error.details() or "")
    too_long = [pb.ClientEvent(type=pb.EVENT_TYPE_PASTE, detail="x" * 1001)]
    expect_code(
        INVALID, lambda: session_stub.LogEvents(pb.LogEventsRequest(session_id=sid, events=too_long), metadata=md)
    )
    too_many = [pb.ClientEvent(type=pb.EVENT_TYPE_NAVIGATION)] * 501
    expect_code(
        INVALID,
        lambda: session_stub.LogEvents(pb.LogEventsRequest(session_id=sid, events=too_many), metadata=md),
        "500",
    )
    (stored,) = export(session_stub, student.user_id)["sessions"]
    assert stored["events"] == []
    stamped = pb.ClientEvent(type=pb.EVENT_TYPE_FULLSCREEN_EXIT)
    stamped.client_time.FromMilliseconds(1_700_000_000_000)
    reply = session_stub.LogEvents(pb.LogEventsRequest(session_id=sid, events=[*good, stamped]), metadata=md)
    assert reply.stored == 4 and reply.server_time.seconds > 0
    (stored,) = export(session_stub, student.user_id)["sessions"]
    assert [e["type"] for e in stored["events"]] == ["EVENT_TYPE_FOCUS_LOST"] * 3 + ["EVENT_TYPE_FULLSCREEN_EXIT"]
    assert stored["events"][-1]["client_ms"] == 1_700_000_000_000 and stored["events"][0]["server_ms"] > 0


def test_a_batch_of_events_is_stored_once_per_request_id(session_stub: Stub) -> None:
    """A reply lost on the network makes the client send the batch again with its request id: stored once."""
    student = new_user(session_stub)
    md = as_user(student)
    sid = start(session_stub, student).session_id
    batch = [pb.ClientEvent(type=pb.EVENT_TYPE_FOCUS_LOST), pb.ClientEvent(type=pb.EVENT_TYPE_FOCUS_REGAINED)]
    once = pb.LogEventsRequest(session_id=sid, events=batch, request_id=request_id())
    first = session_stub.LogEvents(once, metadata=md)
    assert (first.stored, first.replayed) == (2, False)
    again = session_stub.LogEvents(once, metadata=md)
    assert (again.stored, again.replayed) == (2, True)
    # Two copies at once (a retry racing the original): one of them stores it.
    racing = pb.LogEventsRequest(session_id=sid, events=batch[:1], request_id=request_id())
    replies = [session_stub.LogEvents.future(racing, metadata=md) for _ in range(2)]
    assert sorted(f.result().replayed for f in replies) == [False, True]
    # Another batch with the same events and a request id of its own is another batch.
    other = session_stub.LogEvents(
        pb.LogEventsRequest(session_id=sid, events=batch, request_id=request_id()), metadata=md
    )
    assert (other.stored, other.replayed) == (2, False)
    (stored,) = export(session_stub, student.user_id)["sessions"]
    assert [e["type"] for e in stored["events"]] == [
        "EVENT_TYPE_FOCUS_LOST",
        "EVENT_TYPE_FOCUS_REGAINED",
        "EVENT_TYPE_FOCUS_LOST",
        "EVENT_TYPE_FOCUS_LOST",
        "EVENT_TYPE_FOCUS_REGAINED",
    ]
    too_long = pb.LogEventsRequest(session_id=sid, events=batch, request_id="r" * 101)
    expect_code(INVALID, lambda: session_stub.LogEvents(too_long, metadata=md), "request_id")


def test_export_and_erase_of_one_student_leave_the_others_untouched(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    erased, kept = new_user(session_stub), new_user(session_stub)
    for student in (erased, kept):
        session = start(session_stub, student)
        md = as_user(student)
        for item in full_items(item_stub, session.current_module.items[:3]):
            request = pb.SubmitResponseRequest(
                session_id=session.session_id,
                item_id=item.item_id,
                answer=answer(item, correct=True),
                request_id=request_id(),
            )
            session_stub.SubmitResponse(request, metadata=md)
        session_stub.LogEvents(
            pb.LogEventsRequest(session_id=session.session_id, events=[pb.ClientEvent(type=pb.EVENT_TYPE_COPY)]),
            metadata=md,
        )
    own = json.loads(
        session_stub.ExportStudentData(
            pb.ExportStudentDataRequest(student_id=kept.user_id), metadata=as_user(kept)
        ).json_document
    )
    assert own["student"]["username"] == kept.username and "password" not in json.dumps(own)
    before = export(session_stub, kept.user_id)
    erase = pb.EraseStudentDataRequest(student_id=erased.user_id, reason="data subject request")
    expect_code(DENIED, lambda: session_stub.EraseStudentData(erase, metadata=as_user(erased)))
    reply = session_stub.EraseStudentData(erase, metadata=admin())
    assert (reply.sessions_erased, reply.responses_erased, reply.events_erased) == (1, 3, 1)

    after = export(session_stub, erased.user_id)
    assert after["sessions"] == [] and after["student"]["erased"]
    assert erased.username not in json.dumps(after)
    (audit,) = after["audit_events"]
    assert audit["audit_id"] == reply.audit_event_id and audit["actor"] == "usr-test-admin"
    assert audit["detail"]["reason"] == "data subject request" and audit["time_ms"] > 0
    expect_code(
        grpc.StatusCode.UNAUTHENTICATED,
        lambda: session_stub.Authenticate(pb.AuthenticateRequest(username=erased.username, password=PASSWORD)),
    )
    # The kept student's data is as it was; their log gained the record of the admin's export (read before).
    again = export(session_stub, kept.user_id)
    assert [a["action"] for a in again.pop("audit_events")] == ["export_student_data"]
    assert before.pop("audit_events") == [] and again == before


def test_ownership_report_and_health(session_proc: ServiceProcess) -> None:
    with grpc.insecure_channel(session_proc.address) as channel:
        ownership = ownership_pb2_grpc.DatabaseOwnershipStub(channel)
        report = ownership.GetDatabaseOwnership(
            ownership_pb2.GetDatabaseOwnershipRequest(), metadata=metadata(Role.SERVICE)
        )
        # The same rule as item_service's: a service (the gateway's readiness check) or an admin, nobody else.
        expect_code(
            grpc.StatusCode.UNAUTHENTICATED,
            lambda: ownership.GetDatabaseOwnership(ownership_pb2.GetDatabaseOwnershipRequest()),
        )
        expect_code(
            grpc.StatusCode.PERMISSION_DENIED,
            lambda: ownership.GetDatabaseOwnership(
                ownership_pb2.GetDatabaseOwnershipRequest(), metadata=metadata(Role.STUDENT)
            ),
        )
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="toefl.session.v1.SessionService")
        )
    assert (report.service, report.owner, report.expected_owner) == ("session_service", "user_data", "user_data")
    assert (report.backend, report.database_name, report.schema_revision) == ("sqlite", "user_data.db", "0010")
    assert len(report.fingerprint) == 16 and "/" not in report.fingerprint
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_create_user_validates_its_input(session_stub: Stub) -> None:
    def create(**fields: object) -> object:
        user = {"username": "valid-name", "role": pb.ROLE_STUDENT, "password": PASSWORD, **fields}
        return session_stub.CreateUser(pb.CreateUserRequest(user=pb.User(**user)), metadata=admin())  # type: ignore[arg-type]

    expect_code(INVALID, lambda: create(role=pb.ROLE_UNSPECIFIED), "role")
    expect_code(INVALID, lambda: create(password="short"), "password")
    expect_code(INVALID, lambda: create(username="a b"), "username")
    taken = new_user(session_stub)
    expect_code(grpc.StatusCode.ALREADY_EXISTS, lambda: create(username=taken.username), "taken")
