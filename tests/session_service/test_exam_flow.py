"""Whole exams over gRPC: a strong student is routed upper, a weak one lower, and nothing secret leaks."""

from __future__ import annotations

import json

import pytest
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb

from session_service.blueprint import CURRENT_VERSION, load_blueprint
from session_service.domain.modules import module_seed
from tests.session_service.test_views import forbidden_paths
from tests.support.exam import Stub, answer, as_user, full_items, new_user, request_id
from tests.support.tokens import metadata
from toefl_core.auth import Role

UPPER = [pb.MODULE_STAGE_ROUTER, pb.MODULE_STAGE_UPPER] * 2 + [pb.MODULE_STAGE_LINEAR] * 2
LOWER = [pb.MODULE_STAGE_ROUTER, pb.MODULE_STAGE_LOWER] * 2 + [pb.MODULE_STAGE_LINEAR] * 2
SECTIONS = (
    [item_pb2.SECTION_READING] * 2
    + [item_pb2.SECTION_LISTENING] * 2
    + [
        item_pb2.SECTION_WRITING,
        item_pb2.SECTION_SPEAKING,
    ]
)


def without_clock(session: pb.Session) -> pb.Session:
    """The session without the seconds left, which tick between two replies."""
    copy = pb.Session()
    copy.CopyFrom(session)
    copy.current_module.ClearField("remaining_seconds")
    return copy


@pytest.mark.parametrize(("strong", "expected"), [(True, UPPER), (False, LOWER)], ids=["strong", "weak"])
def test_whole_test_routes_by_ability(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub, strong: bool, expected: list[int]
) -> None:
    student = new_user(session_stub)
    md = as_user(student)
    session = session_stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_FULL_TEST, request_id=request_id()), metadata=md
    )
    assert session.blueprint_version == CURRENT_VERSION and session.student_id == student.user_id
    stored = session_stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
    assert without_clock(session) == without_clock(stored)
    stages: list[int] = []
    sections: list[int] = []
    seen: list[str] = []
    while session.HasField("current_module"):
        module = session.current_module
        assert module.status == pb.MODULE_STATUS_OPEN and module.remaining_seconds > 0
        assert module.items and forbidden_paths(module) == []
        stages.append(module.stage)
        sections.append(module.section)
        seen.extend(i.item_id for i in module.items)
        for item in full_items(item_stub, module.items):
            reply = session_stub.SubmitResponse(
                pb.SubmitResponseRequest(
                    session_id=session.session_id,
                    item_id=item.item_id,
                    answer=answer(item, correct=strong),
                    request_id=request_id(),
                ),
                metadata=md,
            )
            assert reply.response.revision == 1 and not reply.replayed
        reloaded = session_stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
        assert {r.item_id for r in reloaded.current_module.responses} == {i.item_id for i in module.items}
        session = session_stub.AdvanceModule(
            pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id()), metadata=md
        )
        # The advance's reply is built from what it read and wrote: it must be the session as stored.
        stored = session_stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
        assert without_clock(session) == without_clock(stored)
    assert stages == expected and sections == SECTIONS
    assert len(seen) == len(set(seen)), "an item was shown twice in one session"
    assert all(m.status == pb.MODULE_STATUS_CLOSED and m.answered_count == m.item_count for m in session.modules)
    finished = session_stub.FinishSession(pb.FinishSessionRequest(session_id=session.session_id), metadata=md)
    assert finished.state == pb.SESSION_STATE_FINISHED and finished.HasField("finish_time")


def test_a_module_can_be_replayed_from_what_the_session_pinned(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    student = new_user(session_stub)
    session = session_stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING),
        metadata=as_user(student),
    )
    document = json.loads(
        session_stub.ExportStudentData(
            pb.ExportStudentDataRequest(student_id=student.user_id), metadata=as_user(student)
        ).json_document
    )
    (module,) = document["sessions"][0]["modules"]
    assert module["seed"] == module_seed(session.session_id, 1)
    plan = load_blueprint(document["sessions"][0]["blueprint_version"]).module(module["plan_key"])
    replay = item_stub.AssembleModule(
        item_service_pb2.AssembleModuleRequest(spec=plan.spec(), seed=module["seed"]),
        metadata=metadata(Role.SERVICE, "tests"),
    )
    pinned = [(i["item_id"], i["revision"]) for i in module["items"]]
    assert [(i.item_id, i.revision) for i in replay.items] == pinned
    assert [(i.item_id, i.revision) for i in session.current_module.items] == pinned


def test_the_current_item_is_the_module_item_last_reported_viewed(session_stub: Stub) -> None:
    """Where another device resumes: the last EVENT_TYPE_ITEM_VIEWED to arrive naming an item of the module."""
    student = new_user(session_stub)
    md = as_user(student)
    session = session_stub.CreateSession(
        pb.CreateSessionRequest(
            scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING, request_id=request_id()
        ),
        metadata=md,
    )
    items = [item.item_id for item in session.current_module.items]
    assert session.current_module.current_item_id == ""

    def log(*events: pb.ClientEvent) -> None:
        session_stub.LogEvents(pb.LogEventsRequest(session_id=session.session_id, events=events), metadata=md)

    def viewed(item_id: str) -> pb.ClientEvent:
        return pb.ClientEvent(type=pb.EVENT_TYPE_ITEM_VIEWED, item_id=item_id)

    log(viewed(items[0]), viewed(items[3]))
    log(viewed(items[2]))
    # Neither another event naming an item nor a view of an item outside the module moves the position.
    log(pb.ClientEvent(type=pb.EVENT_TYPE_FOCUS_LOST, item_id=items[4]), viewed("itm-999999"))
    again = session_stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
    assert again.current_module.current_item_id == items[2]
    module = session_stub.GetCurrentModule(pb.GetCurrentModuleRequest(session_id=session.session_id), metadata=md)
    assert module.current_item_id == items[2]
    # Back to an item viewed before: its newest view is the latest of all.
    log(viewed(items[0]))
    back = session_stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
    assert back.current_module.current_item_id == items[0]


def test_the_items_whose_audio_was_played_are_those_reported_played_on_any_device(session_stub: Stub) -> None:
    """Another device does not offer a prompt's audio again: each EVENT_TYPE_AUDIO_PLAYED naming an item of the
    module marks it, in the module's order, whatever client sent it."""
    student = new_user(session_stub)
    md = as_user(student)
    session = session_stub.CreateSession(
        pb.CreateSessionRequest(
            scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_LISTENING, request_id=request_id()
        ),
        metadata=md,
    )
    items = [item.item_id for item in session.current_module.items]
    assert list(session.current_module.audio_played_item_ids) == []

    def played(item_id: str) -> pb.ClientEvent:
        return pb.ClientEvent(type=pb.EVENT_TYPE_AUDIO_PLAYED, item_id=item_id)

    first = pb.LogEventsRequest(session_id=session.session_id, events=[played(items[3])], request_id=request_id())
    session_stub.LogEvents(first, metadata=md)
    # Another device's batch: the same item again, an earlier one, one outside the module, and a view (not a play).
    second = pb.LogEventsRequest(
        session_id=session.session_id,
        events=[
            played(items[3]),
            played(items[1]),
            played("itm-999999"),
            pb.ClientEvent(type=pb.EVENT_TYPE_ITEM_VIEWED, item_id=items[2]),
        ],
        request_id=request_id(),
    )
    session_stub.LogEvents(second, metadata=md)
    again = session_stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
    assert list(again.current_module.audio_played_item_ids) == [items[1], items[3]]
    assert again.current_module.current_item_id == items[2]
    module = session_stub.GetCurrentModule(pb.GetCurrentModuleRequest(session_id=session.session_id), metadata=md)
    assert list(module.audio_played_item_ids) == [items[1], items[3]]
