"""Scores through the real services: scored at section close, provisional until rated, versions, ratings."""

from __future__ import annotations

import json
from decimal import Decimal

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from session_service.blueprint import CURRENT_VERSION
from tests.session_service.scoring_flow import (
    RATED,
    ScoringStub,
    expected_section,
    rater,
    report,
    section_of,
    take_session,
    tasks_of,
)
from tests.support.exam import admin, as_user, expect_code, new_user, request_id
from tests.support.tokens import metadata
from toefl_core.auth import Role
from toefl_core.scoring import total_score
from toefl_core.scoring_rules import cefr_level

CODE = grpc.StatusCode
PROVISIONAL = spb.SCORE_STATUS_PROVISIONAL
FINAL = spb.SCORE_STATUS_FINAL


def test_full_test_scored_end_to_end(
    stub: session_service_pb2_grpc.SessionServiceStub,
    scoring: ScoringStub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
) -> None:
    student = new_user(stub)
    taken = take_session(stub, item_stub, student, seed=11)
    first = report(scoring, taken.session_id, admin())
    assert list(first.pending_sections) == []
    score = first.score
    assert score.status == PROVISIONAL and score.total_band == "" and not score.HasField("comparable_total")
    assert score.blueprint_version == CURRENT_VERSION and score.cut_table_version
    for section in (item_pb2.SECTION_READING, item_pb2.SECTION_LISTENING):
        got = section_of(score, section)
        theta, se, band = expected_section(taken, section)
        assert got.status == FINAL and got.items_awaiting_rating == 0
        assert got.theta == pytest.approx(theta, abs=1e-9) and got.standard_error == pytest.approx(se, abs=1e-9)
        assert got.band == band and got.cefr == cefr_level(Decimal(band))
        assert Decimal(got.band_low) <= Decimal(got.band) <= Decimal(got.band_high)
        assert got.items_used == len(taken.items[section])
    for section in (item_pb2.SECTION_WRITING, item_pb2.SECTION_SPEAKING):
        got = section_of(score, section)
        rated = [i for i in taken.items[section] if i.task_type in RATED]
        assert got.status == PROVISIONAL and got.items_awaiting_rating == len(rated)
        theta, _, band = expected_section(taken, section, ratings={})
        assert got.theta == pytest.approx(theta, abs=1e-9) and got.band == band
    pinned = {i.item_id: i.revision for items in taken.items.values() for i in items}
    assert dict(score.parameter_revisions) == pinned
    own = report(scoring, taken.session_id, as_user(student))
    assert not own.task_types and not own.score.parameter_revisions
    for got, staff in zip(own.score.sections, score.sections, strict=True):
        assert (got.theta, got.standard_error) == (0.0, 0.0)
        assert (got.band, got.cefr, got.band_low, got.band_high) == (
            staff.band,
            staff.cefr,
            staff.band_low,
            staff.band_high,
        )
    summaries = {t.task_type: t for t in first.task_types}
    assert sum(t.items for t in summaries.values()) == len(pinned)
    build = summaries[item_pb2.TASK_TYPE_BUILD_A_SENTENCE]
    assert build.max_points == build.items and build.points == sum(
        taken.correct[i.item_id] for i in taken.items[item_pb2.SECTION_WRITING] if i.task_type == build.task_type
    )

    # Rate every rated response of this session: the last rating makes the whole score final, with a total.
    ratings: dict[str, int] = {}
    md = rater()
    mine = {t.item_id: t for t in tasks_of(scoring, md) if t.item_id in taken.correct}
    assert set(mine) == {i.item_id for s in taken.items.values() for i in s if i.task_type in RATED}
    for n, (item_id, task) in enumerate(sorted(mine.items())):
        ratings[item_id] = n % 6
        result = scoring.SubmitRating(
            spb.SubmitRatingRequest(response_id=task.response_id, score=n % 6, request_id=request_id()),
            metadata=md,
        )
        assert result.state == spb.RATING_TASK_STATE_FINAL and result.final_score == n % 6
        assert result.rule == "single rating"
    final = report(scoring, taken.session_id, admin()).score
    assert final.status == FINAL and final.reason == "rating"
    bands = {}
    for section, name in (
        (item_pb2.SECTION_READING, "reading"),
        (item_pb2.SECTION_LISTENING, "listening"),
        (item_pb2.SECTION_WRITING, "writing"),
        (item_pb2.SECTION_SPEAKING, "speaking"),
    ):
        got = section_of(final, section)
        theta, _, band = expected_section(taken, section, ratings=ratings)
        assert got.status == FINAL and got.band == band and got.theta == pytest.approx(theta, abs=1e-9)
        bands[name] = Decimal(band)
    total = total_score(bands)
    assert (final.total_band, final.total_cefr) == (str(total.band), total.cefr)
    assert (final.comparable_total.low, final.comparable_total.high, final.comparable_total.midpoint) == (
        total.comparable.low,
        total.comparable.high,
        total.comparable.midpoint,
    )
    versions = scoring.ListScoreVersions(
        spb.ListScoreVersionsRequest(session_id=taken.session_id), metadata=admin()
    ).versions
    assert [v.version for v in versions] == list(range(len(versions), 0, -1))
    # One version per closed section, then one per final rating; none was overwritten.
    assert len(versions) == 4 + len(mine)
    assert [v.reason for v in versions[-4:]] == ["section_closed"] * 4
    assert versions[-1].sections[0].section == item_pb2.SECTION_READING and len(versions[-1].sections) == 1


def test_writing_goes_from_provisional_to_final_as_ratings_arrive(
    stub: session_service_pb2_grpc.SessionServiceStub,
    scoring: ScoringStub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
) -> None:
    student = new_user(stub)
    taken = take_session(stub, item_stub, student, section=item_pb2.SECTION_WRITING, seed=3)
    # The staff view: theta moves with each rating, which a student's own report does not show.
    md = admin()
    before = report(scoring, taken.session_id, md).score
    writing = section_of(before, item_pb2.SECTION_WRITING)
    assert before.status == PROVISIONAL and writing.status == PROVISIONAL and writing.items_awaiting_rating == 2
    assert writing.items_used == 10
    first_rater, second_rater = rater(), rater()
    tasks = {t.item_id: t for t in tasks_of(scoring, first_rater) if t.item_id in taken.correct}
    assert len(tasks) == 2
    email = next(t for t in tasks.values() if t.task_type == item_pb2.TASK_TYPE_WRITE_AN_EMAIL)
    discussion = next(t for t in tasks.values() if t.task_type == item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION)
    # Blind and student-safe: the response and rubric, never the key, the parameters or whose it is.
    assert email.response_text and email.rubric.max_score == 5 and email.item.item_id == email.item_id
    assert not email.item.HasField("irt") and not email.item.HasField("answer_key")
    assert email.state == spb.RATING_TASK_STATE_AWAITING_RATING

    scoring.SubmitRating(spb.SubmitRatingRequest(response_id=email.response_id, score=4), metadata=first_rater)
    middle = report(scoring, taken.session_id, md).score
    writing = section_of(middle, item_pb2.SECTION_WRITING)
    assert middle.version == before.version + 1 and middle.reason == "rating"
    assert writing.status == PROVISIONAL and writing.items_awaiting_rating == 1 and writing.items_used == 11
    theta, _, band = expected_section(taken, item_pb2.SECTION_WRITING, ratings={email.item_id: 4})
    assert writing.theta == pytest.approx(theta, abs=1e-9) and writing.band == band

    scoring.SubmitRating(
        spb.SubmitRatingRequest(response_id=discussion.response_id, score=2, dimension_scores={"language": 2}),
        metadata=second_rater,
    )
    after = report(scoring, taken.session_id, md).score
    writing = section_of(after, item_pb2.SECTION_WRITING)
    assert after.status == FINAL and writing.status == FINAL and writing.items_awaiting_rating == 0
    theta, _, band = expected_section(
        taken, item_pb2.SECTION_WRITING, ratings={email.item_id: 4, discussion.item_id: 2}
    )
    assert writing.theta == pytest.approx(theta, abs=1e-9) and writing.band == band
    # A section test has no total: the total takes all four sections.
    assert after.total_band == ""
    old = scoring.ListScoreVersions(spb.ListScoreVersionsRequest(session_id=taken.session_id), metadata=md)
    assert [v.status for v in old.versions] == [FINAL, PROVISIONAL, PROVISIONAL]
    assert old.versions[2] == before


def test_a_rater_cannot_rate_twice_and_a_retry_acts_once(
    stub: session_service_pb2_grpc.SessionServiceStub,
    scoring: ScoringStub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
) -> None:
    student = new_user(stub)
    taken = take_session(stub, item_stub, student, section=item_pb2.SECTION_WRITING, seed=5)
    md = rater()
    task = next(t for t in tasks_of(scoring, md, item_pb2.TASK_TYPE_WRITE_AN_EMAIL) if t.item_id in taken.correct)
    rid = request_id()
    request = spb.SubmitRatingRequest(response_id=task.response_id, score=3, comment="clear", request_id=rid)
    first = scoring.SubmitRating(request, metadata=md)
    assert scoring.SubmitRating(request, metadata=md) == first
    expect_code(
        CODE.ALREADY_EXISTS,
        lambda: scoring.SubmitRating(
            spb.SubmitRatingRequest(response_id=task.response_id, score=5, request_id=request_id()), metadata=md
        ),
    )
    assert task.response_id not in {t.response_id for t in tasks_of(scoring, md)}
    # Final after one rating: nobody else rates it any more.
    other = rater()
    assert task.response_id not in {t.response_id for t in tasks_of(scoring, other)}
    expect_code(
        CODE.FAILED_PRECONDITION,
        lambda: scoring.SubmitRating(
            spb.SubmitRatingRequest(response_id=task.response_id, score=1), metadata=other
        ),
    )
    expect_code(
        CODE.INVALID_ARGUMENT,
        lambda: scoring.SubmitRating(
            spb.SubmitRatingRequest(response_id=task.response_id, score=6), metadata=other
        ),
        "score",
    )
    expect_code(
        CODE.NOT_FOUND,
        lambda: scoring.SubmitRating(spb.SubmitRatingRequest(response_id="999999999", score=1), metadata=other),
    )


def test_unanswered_items_score_zero_and_an_unanswered_rated_item_needs_no_rating(
    stub: session_service_pb2_grpc.SessionServiceStub,
    scoring: ScoringStub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
) -> None:
    student = new_user(stub)
    # Nothing answered: every item scores 0, and no response waits for a rating.
    taken = take_session(stub, item_stub, student, section=item_pb2.SECTION_SPEAKING, skip=11, seed=9)
    got = section_of(report(scoring, taken.session_id, admin()).score, item_pb2.SECTION_SPEAKING)
    theta, _, band = expected_section(taken, item_pb2.SECTION_SPEAKING, ratings={})
    assert got.status == FINAL and got.items_awaiting_rating == 0 and got.items_used == 11
    assert got.theta == pytest.approx(theta, abs=1e-9) and got.band == band


def test_a_session_in_progress_has_pending_sections(
    stub: session_service_pb2_grpc.SessionServiceStub, scoring: ScoringStub
) -> None:
    student = new_user(stub)
    session = stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_FULL_TEST), metadata=as_user(student)
    )
    got = report(scoring, session.session_id, as_user(student))
    assert not got.HasField("score")
    assert list(got.pending_sections) == [
        item_pb2.SECTION_READING,
        item_pb2.SECTION_LISTENING,
        item_pb2.SECTION_WRITING,
        item_pb2.SECTION_SPEAKING,
    ]


def test_scores_are_exported_with_the_student_and_erased_with_them(
    stub: session_service_pb2_grpc.SessionServiceStub,
    scoring: ScoringStub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
) -> None:
    student = new_user(stub)
    taken = take_session(stub, item_stub, student, section=item_pb2.SECTION_WRITING, seed=13)
    md = rater()
    task = next(t for t in tasks_of(scoring, md) if student.user_id in t.response_text)
    scoring.SubmitRating(spb.SubmitRatingRequest(response_id=task.response_id, score=4), metadata=md)
    document = json.loads(
        stub.ExportStudentData(
            pb.ExportStudentDataRequest(student_id=student.user_id), metadata=as_user(student)
        ).json_document
    )
    (session,) = document["sessions"]
    assert [v["version"] for v in session["score_versions"]] == [1, 2]
    assert session["score_versions"][1]["sections"][0]["section"] == "SECTION_WRITING"

    stub.EraseStudentData(
        pb.EraseStudentDataRequest(student_id=student.user_id, reason="request"), metadata=admin()
    )
    expect_code(
        CODE.NOT_FOUND,
        lambda: scoring.ListScoreVersions(
            spb.ListScoreVersionsRequest(session_id=taken.session_id), metadata=admin()
        ),
    )
    assert not [t for t in tasks_of(scoring, rater()) if t.response_id == task.response_id]
    assert (
        taken.session_id
        not in scoring.ListFinishedSessions(
            spb.ListFinishedSessionsRequest(page_size=200), metadata=metadata(Role.SERVICE, "tests")
        ).session_ids
    )
