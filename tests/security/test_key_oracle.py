"""Issue 15's key oracle, through the gateway: a one-answer session tells its student nothing about the key, and
a student starts a bounded number of sessions a day."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.security.conftest import Stack, running_stack
from tests.support.exam import PASSWORD, answer
from tests.support.tokens import token
from toefl_core.auth import Role

DAILY_LIMIT = 3
ADMIN = token(Role.ADMIN, "oracle-admin")
CHOICE_TASKS = {"TASK_TYPE_READ_IN_DAILY_LIFE", "TASK_TYPE_READ_ACADEMIC_PASSAGE"}
# What differs between any two reports whatever was answered.
VOLATILE = {"sessionId", "scoreId", "createTime"}


@pytest.fixture(scope="module")
def limited(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"SESSION_DAILY_SESSION_LIMIT": str(DAILY_LIMIT)}
    with running_stack(item_service_proc, tmp_path_factory.mktemp("oracle"), session_env=env) as running:
        yield running


def new_student(stack: Stack) -> str:
    """A fresh student's bearer token."""
    stub = session_service_pb2_grpc.SessionServiceStub(stack.channels["session_service"])
    username = f"oracle-{uuid.uuid4().hex[:12]}"
    user = pb.User(username=username, display_name=username, role=pb.ROLE_STUDENT, password=PASSWORD)
    created = stub.CreateUser(pb.CreateUserRequest(user=user), metadata=(("authorization", f"Bearer {ADMIN}"),))
    return token(Role.STUDENT, created.user_id)


def start(stack: Stack, student: str, request_id: str | None = None) -> tuple[int, dict[str, Any]]:
    body = {
        "scope": "SESSION_SCOPE_SECTION",
        "section": "SECTION_READING",
        "requestId": request_id or uuid.uuid4().hex,
    }
    return stack.gateway.request("POST", "/api/sessions", token=student, body=body)


def one_answer_session(stack: Stack, student: str, *, correct: bool) -> str:
    """A Reading session with one multiple-choice item answered (right or wrong, from the key an admin reads),
    then finished."""
    status, session = start(stack, student)
    assert status == 200, session
    session_id = str(session["sessionId"])
    status, module = stack.gateway.request("GET", f"/api/sessions/{session_id}/module", token=student)
    assert status == 200, module
    chosen = next(item for item in module["items"] if item["taskType"] in CHOICE_TASKS)
    url = f"/api/items/{chosen['itemId']}?view=ITEM_VIEW_FULL&revision={chosen['revision']}"
    status, full = stack.gateway.request("GET", url, token=ADMIN)
    assert status == 200, full
    given = answer(json_format.ParseDict(full, item_pb2.Item()), correct=correct)
    body = {"answer": json_format.MessageToDict(given), "requestId": uuid.uuid4().hex}
    status, saved = stack.gateway.request(
        "PUT", f"/api/sessions/{session_id}/responses/{chosen['itemId']}", token=student, body=body
    )
    assert status == 200, saved
    status, finished = stack.gateway.request("POST", f"/api/sessions/{session_id}:finish", token=student, body={})
    assert status == 200 and finished["state"] == "SESSION_STATE_FINISHED", finished
    return session_id


def without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [without_volatile(v) for v in value]
    return value


def reads(stack: Stack, session_id: str, who: str) -> dict[str, Any]:
    """The score report and the score versions of a session as `who` reads them."""
    found = {}
    for name in ("scoreReport", "scores"):
        status, body = stack.gateway.request("GET", f"/api/sessions/{session_id}/{name}", token=who)
        assert status == 200, body
        found[name] = body
    return found


def test_a_one_answer_session_says_nothing_about_the_key(limited: Stack) -> None:
    student = new_student(limited)
    right = one_answer_session(limited, student, correct=True)
    wrong = one_answer_session(limited, student, correct=False)
    # The staff view does tell them apart: without the rule, the student would have read it the same way.
    staff = {sid: reads(limited, sid, ADMIN)["scoreReport"] for sid in (right, wrong)}
    points = {sid: sum(t.get("points", 0.0) for t in report["taskTypes"]) for sid, report in staff.items()}
    assert points[right] > 0 and points[wrong] == 0, points
    mine = {sid: reads(limited, sid, student) for sid in (right, wrong)}
    assert without_volatile(mine[right]) == without_volatile(mine[wrong])
    report = mine[right]["scoreReport"]
    (section,) = report["score"]["sections"]
    # The gateway prints every field: absent means empty (or zero).
    assert not report["taskTypes"] and not report["score"]["parameterRevisions"]
    assert section["status"] == "SCORE_STATUS_FINAL" and section["itemsUsed"] >= 1
    # One answer of several items: no band, range, CEFR or theta for the student.
    hidden = ("theta", "standardError", "band", "bandLow", "bandHigh", "cefr")
    assert not any(section.get(name) for name in hidden), section


def test_a_student_starts_a_bounded_number_of_sessions_a_day(limited: Stack) -> None:
    student = new_student(limited)
    first = uuid.uuid4().hex
    for n in range(DAILY_LIMIT):
        status, body = start(limited, student, first if n == 0 else None)
        assert status == 200, body
    status, body = start(limited, student)
    assert (status, body["code"]) == (429, 8), body
    assert f"at most {DAILY_LIMIT} sessions per UTC day" in body["message"] and "resets at" in body["message"]
    # A retry of a session already started is no new session.
    status, again = start(limited, student, first)
    assert status == 200, again
    # An admin (a proctor after an incident) may still start one for the student.
    student_id = again["studentId"]
    body = {"studentId": student_id, "scope": "SESSION_SCOPE_SECTION", "section": "SECTION_WRITING"}
    status, proctored = limited.gateway.request("POST", "/api/sessions", token=ADMIN, body=body)
    assert status == 200, proctored
