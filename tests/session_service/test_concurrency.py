"""100 simulated students answering at once: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb

from tests.support.exam import Stub, admin, answer, as_user, full_items, new_user, request_id

STUDENTS = 100


def test_hundred_students_submitting_concurrently(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    def enrol(_: int) -> tuple[pb.User, pb.Session, list[item_pb2.Item]]:
        student = new_user(session_stub)
        session = session_stub.CreateSession(
            pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING),
            metadata=as_user(student),
        )
        return student, session, full_items(item_stub, session.current_module.items)

    with ThreadPoolExecutor(16) as pool:
        exams = list(pool.map(enrol, range(STUDENTS)))

    start = threading.Barrier(STUDENTS)

    def take(exam: tuple[pb.User, pb.Session, list[item_pb2.Item]]) -> list[str]:
        student, session, items = exam
        md = as_user(student)
        acknowledged = []
        start.wait()
        for index, item in enumerate(items):
            rid = request_id()
            request = pb.SubmitResponseRequest(
                session_id=session.session_id,
                item_id=item.item_id,
                answer=answer(item, correct=True),
                request_id=rid,
            )
            reply = session_stub.SubmitResponse(request, metadata=md)
            assert not reply.replayed
            if index == 0:
                # A client retry that raced its own first attempt: a replay, never a second row.
                assert session_stub.SubmitResponse(request, metadata=md).replayed
            acknowledged.append(rid)
        return acknowledged

    with ThreadPoolExecutor(STUDENTS) as pool:
        acknowledged = list(pool.map(take, exams))

    for (student, session, items), acked in zip(exams, acknowledged, strict=True):
        document = json.loads(
            session_stub.ExportStudentData(
                pb.ExportStudentDataRequest(student_id=student.user_id), metadata=admin()
            ).json_document
        )
        (stored_session,) = document["sessions"]
        assert stored_session["session_id"] == session.session_id
        stored = [r["request_id"] for r in stored_session["responses"]]
        assert sorted(stored) == sorted(acked), f"{student.user_id}: stored answers differ from acknowledged ones"
        assert {r["item_id"] for r in stored_session["responses"]} == {i.item_id for i in items}
