"""Who may read scores: the student their own, a teacher their classes', admins all; rosters, analytics, jobs."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from tests.session_service.scoring_flow import ScoringStub, TakenSession, take_session
from tests.support.exam import admin, as_user, expect_code, new_user
from tests.support.tokens import metadata
from toefl_core.auth import Role

CODE = grpc.StatusCode
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class World:
    taken: TakenSession
    class_id: str
    other_class_id: str
    callers: dict[str, Metadata]


@pytest.fixture(scope="module")
def world(channel: grpc.Channel, item_stub: item_service_pb2_grpc.ItemServiceStub) -> World:
    """A student with a finished writing session in one teacher's class; another teacher, class and student."""
    stub = session_service_pb2_grpc.SessionServiceStub(channel)
    teacher, other_teacher = new_user(stub, pb.ROLE_TEACHER), new_user(stub, pb.ROLE_TEACHER)
    own_class = stub.CreateClass(pb.CreateClassRequest(name="Scores 1"), metadata=as_user(teacher))
    other_class = stub.CreateClass(pb.CreateClassRequest(name="Scores 2"), metadata=as_user(other_teacher))
    student = new_user(stub, class_id=own_class.class_id)
    other_student = new_user(stub, class_id=other_class.class_id)
    taken = take_session(stub, item_stub, student, section=item_pb2.SECTION_WRITING)
    return World(
        taken=taken,
        class_id=own_class.class_id,
        other_class_id=other_class.class_id,
        callers={
            "student": as_user(student),
            "other student": as_user(other_student),
            "teacher": as_user(teacher),
            "other teacher": as_user(other_teacher),
            "rater": metadata(Role.RATER, "usr-access-rater"),
            "author": metadata(Role.AUTHOR, "usr-access-author"),
            "service": metadata(Role.SERVICE, "scoring-tests"),
            "admin": admin(),
            "anonymous": (),
        },
    )


def outcome(call: Callable[..., Any], *args: Any, **kwargs: Any) -> CODE:
    try:
        call(*args, **kwargs)
    except grpc.RpcError as error:
        return error.code()
    return CODE.OK


DENIED = CODE.PERMISSION_DENIED
READERS = {"student": CODE.OK, "teacher": CODE.OK, "admin": CODE.OK, "anonymous": CODE.UNAUTHENTICATED}


@pytest.mark.parametrize("rpc", ["GetScoreReport", "ListScoreVersions"])
def test_score_reports(scoring: ScoringStub, world: World, rpc: str) -> None:
    request = (spb.GetScoreReportRequest if rpc == "GetScoreReport" else spb.ListScoreVersionsRequest)(
        session_id=world.taken.session_id
    )
    got = {who: outcome(getattr(scoring, rpc), request, metadata=md) for who, md in world.callers.items()}
    assert got == {who: READERS.get(who, DENIED) for who in world.callers}


def test_class_roster(scoring: ScoringStub, world: World) -> None:
    request = spb.GetClassRosterRequest(class_id=world.class_id)
    got = {who: outcome(scoring.GetClassRoster, request, metadata=md) for who, md in world.callers.items()}
    assert got == {who: READERS.get(who, DENIED) for who in world.callers if who != "student"} | {
        "student": DENIED
    }
    roster = scoring.GetClassRoster(request, metadata=world.callers["teacher"])
    (entry,) = roster.students
    assert roster.name == "Scores 1" and entry.student_id == world.taken.student.user_id
    assert (entry.sessions_finished, entry.sessions_in_progress) == (1, 0)
    assert entry.latest_score.session_id == world.taken.session_id
    assert entry.latest_score.sections[0].section == item_pb2.SECTION_WRITING
    other = spb.GetClassRosterRequest(class_id=world.other_class_id)
    assert outcome(scoring.GetClassRoster, other, metadata=world.callers["teacher"]) == DENIED
    missing = spb.GetClassRosterRequest(class_id="cls-missing")
    assert outcome(scoring.GetClassRoster, missing, metadata=admin()) == CODE.NOT_FOUND


def test_analytics(scoring: ScoringStub, world: World) -> None:
    request = spb.GetAnalyticsRequest()
    got = {who: outcome(scoring.GetAnalytics, request, metadata=md) for who, md in world.callers.items()}
    assert got == {who: DENIED for who in world.callers} | {"admin": CODE.OK, "anonymous": CODE.UNAUTHENTICATED}
    today = dt.datetime.now(dt.UTC).date().isoformat()
    analytics = scoring.GetAnalytics(spb.GetAnalyticsRequest(start_date=today, end_date=today), metadata=admin())
    (day,) = analytics.days
    assert day.date == today and day.sessions_started >= 1 and day.sessions_finished >= 1
    writing = next(d for d in analytics.band_distributions if d.section == item_pb2.SECTION_WRITING)
    assert sum(b.count for b in writing.bands) >= 1
    times = {t.task_type: t for t in analytics.task_times}
    assert times[item_pb2.TASK_TYPE_BUILD_A_SENTENCE].responses >= 10
    assert len(scoring.GetAnalytics(spb.GetAnalyticsRequest(), metadata=admin()).days) == 30
    for bad in (
        spb.GetAnalyticsRequest(start_date="yesterday"),
        spb.GetAnalyticsRequest(start_date=today, end_date="2020-01-01"),
        spb.GetAnalyticsRequest(start_date="2000-01-01", end_date=today),
    ):
        assert outcome(scoring.GetAnalytics, bad, metadata=admin()) == CODE.INVALID_ARGUMENT


def test_rating_rpcs_are_for_raters(scoring: ScoringStub, world: World) -> None:
    lists = {
        who: outcome(scoring.ListRatingTasks, spb.ListRatingTasksRequest(), metadata=md)
        for who, md in world.callers.items()
    }
    assert lists == {who: DENIED for who in world.callers} | {
        "rater": CODE.OK,
        "admin": CODE.OK,
        "anonymous": CODE.UNAUTHENTICATED,
    }
    rating = spb.SubmitRatingRequest(response_id="1", score=3)
    for who in ("student", "teacher", "service", "author"):
        assert outcome(scoring.SubmitRating, rating, metadata=world.callers[who]) == DENIED
    statistics = spb.ListRaterStatisticsRequest()
    for who in ("student", "teacher", "service"):
        assert outcome(scoring.ListRaterStatistics, statistics, metadata=world.callers[who]) == DENIED


def test_scoring_job_rpcs_are_for_services_and_admins(scoring: ScoringStub, world: World) -> None:
    session_id = world.taken.session_id
    calls: dict[str, Callable[[Metadata], Any]] = {
        "rescore": lambda md: scoring.RescoreSession(
            spb.RescoreSessionRequest(session_id=session_id, dry_run=True), metadata=md
        ),
        "finished": lambda md: scoring.ListFinishedSessions(spb.ListFinishedSessionsRequest(), metadata=md),
        "export": lambda md: list(scoring.ExportResponses(spb.ExportResponsesRequest(), metadata=md)),
    }
    for name, call in calls.items():
        got = {who: outcome(functools.partial(call, md)) for who, md in world.callers.items()}
        expected = {who: DENIED for who in world.callers} | {
            "service": CODE.OK,
            "admin": CODE.OK,
            "anonymous": CODE.UNAUTHENTICATED,
        }
        assert got == expected, name
    expect_code(
        CODE.INVALID_ARGUMENT,
        lambda: scoring.RescoreSession(spb.RescoreSessionRequest(), metadata=world.callers["service"]),
        "session_id",
    )
