"""Blind double rating: a second rater, adjudication of ratings 2 or more apart, and rater statistics."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.session_service.scoring_flow import (
    ScoringStub,
    expected_section,
    rater,
    report,
    section_of,
    start_session_service,
    take_session,
    tasks_of,
)
from tests.support.exam import expect_code, new_user
from tests.support.tokens import metadata
from toefl_core.auth import Role

CODE = grpc.StatusCode
EMAIL = item_pb2.TASK_TYPE_WRITE_AN_EMAIL
DISCUSSION = item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION


@pytest.fixture(scope="module")
def proc(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    # Every rated response is double-rated here.
    started = start_session_service(tmp_path_factory, item_service_proc, second_rating_share="1")
    yield started
    started.terminate()


def rate(
    scoring: ScoringStub, md: tuple[tuple[str, str], ...], task: spb.RatingTask, score: int
) -> spb.RatingResult:
    return scoring.SubmitRating(spb.SubmitRatingRequest(response_id=task.response_id, score=score), metadata=md)


def visible(scoring: ScoringStub, md: tuple[tuple[str, str], ...], task: spb.RatingTask) -> spb.RatingTask | None:
    return next((t for t in tasks_of(scoring, md) if t.response_id == task.response_id), None)


def test_double_rating_adjudication_and_agreement(
    stub: session_service_pb2_grpc.SessionServiceStub,
    scoring: ScoringStub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
) -> None:
    student = new_user(stub)
    taken = take_session(stub, item_stub, student, section=item_pb2.SECTION_WRITING, seed=21)
    first, second, third = rater(), rater(), rater()
    tasks = {t.task_type: t for t in tasks_of(scoring, first) if t.item_id in taken.correct}
    email, discussion = tasks[EMAIL], tasks[DISCUSSION]

    # The email: 1 and 4 are 3 apart, so it goes to an adjudicator who is neither of the two.
    result = rate(scoring, first, email, 1)
    assert result.state == spb.RATING_TASK_STATE_AWAITING_SECOND_RATING and not result.HasField("final_score")
    assert visible(scoring, first, email) is None
    seen_by_second = visible(scoring, second, email)
    assert seen_by_second is not None and seen_by_second.state == spb.RATING_TASK_STATE_AWAITING_SECOND_RATING
    result = rate(scoring, second, email, 4)
    assert result.state == spb.RATING_TASK_STATE_NEEDS_ADJUDICATION and "differ by 2" in result.rule
    assert visible(scoring, first, email) is None and visible(scoring, second, email) is None
    expect_code(CODE.ALREADY_EXISTS, lambda: rate(scoring, first, email, 3))
    expect_code(CODE.ALREADY_EXISTS, lambda: rate(scoring, second, email, 3))
    adjudication = visible(scoring, third, email)
    assert adjudication is not None and adjudication.state == spb.RATING_TASK_STATE_NEEDS_ADJUDICATION
    result = rate(scoring, third, email, 3)
    assert result.state == spb.RATING_TASK_STATE_FINAL and result.final_score == 3 and "adjudicator" in result.rule
    assert visible(scoring, rater(), email) is None

    # The discussion: 2 and 3 are within a point, so the final is their mean rounded half up.
    writing = section_of(
        report(scoring, taken.session_id, metadata(Role.ADMIN, "usr-admin")).score, item_pb2.SECTION_WRITING
    )
    assert writing.status == spb.SCORE_STATUS_PROVISIONAL and writing.items_awaiting_rating == 1
    assert rate(scoring, first, discussion, 2).state == spb.RATING_TASK_STATE_AWAITING_SECOND_RATING
    result = rate(scoring, second, discussion, 3)
    assert result.state == spb.RATING_TASK_STATE_FINAL and result.final_score == 3
    assert result.rule == "mean of 2 and 3 rounded half up"
    writing = section_of(
        report(scoring, taken.session_id, metadata(Role.ADMIN, "usr-admin")).score, item_pb2.SECTION_WRITING
    )
    theta, _, band = expected_section(
        taken, item_pb2.SECTION_WRITING, ratings={email.item_id: 3, discussion.item_id: 3}
    )
    assert writing.status == spb.SCORE_STATUS_FINAL and writing.band == band
    assert writing.theta == pytest.approx(theta, abs=1e-9)

    # Statistics over the two double-rated responses: (1, 4) and (2, 3), both ways round.
    admin = metadata(Role.ADMIN, "usr-admin")
    stats = {
        s.rater_id: s for s in scoring.ListRaterStatistics(spb.ListRaterStatisticsRequest(), metadata=admin).raters
    }
    mine = scoring.ListRaterStatistics(spb.ListRaterStatisticsRequest(), metadata=first).raters
    assert len(mine) == 1
    own = mine[0]
    assert own.double_rated == 2 and own.exact_agreement == 0.0 and own.adjacent_agreement == 0.5
    assert stats[own.rater_id] == own
    # The adjudicator's rating is not a regular one: it gives no agreement figures.
    assert len(stats) == 2
    expect_code(
        CODE.PERMISSION_DENIED,
        lambda: scoring.ListRaterStatistics(
            spb.ListRaterStatisticsRequest(rater_id=next(r for r in stats if r != own.rater_id)), metadata=first
        ),
    )
