"""What a new rating does to its task: once per rater, none after final, resolved as toefl_core.rating says."""

from __future__ import annotations

import pytest

from session_service.domain.ratings import decide_rating
from session_service.domain.states import TASK_ADJUDICATION, TASK_AWAITING, TASK_AWAITING_SECOND, TASK_FINAL
from toefl_core.errors import AlreadyExists, FailedPrecondition
from toefl_core.rating import Rating


def test_a_single_rated_response_is_final_at_its_first_rating() -> None:
    decision = decide_rating(
        response_id=7, task_state=TASK_AWAITING, double_rated=False, earlier=[], rater_id="r1", score=4
    )
    assert (decision.task_state, decision.final_score, decision.rating) == (TASK_FINAL, 4, Rating("r1", 4))


def test_a_double_rated_response_waits_for_its_second_rating() -> None:
    decision = decide_rating(
        response_id=7, task_state=TASK_AWAITING, double_rated=True, earlier=[], rater_id="r1", score=4
    )
    assert (decision.task_state, decision.final_score) == (TASK_AWAITING_SECOND, None)


def test_two_ratings_two_apart_go_to_adjudication_and_the_adjudicator_settles_it() -> None:
    split = decide_rating(
        response_id=7,
        task_state=TASK_AWAITING_SECOND,
        double_rated=True,
        earlier=[Rating("r1", 1)],
        rater_id="r2",
        score=4,
    )
    assert (split.task_state, split.final_score) == (TASK_ADJUDICATION, None)
    settled = decide_rating(
        response_id=7,
        task_state=TASK_ADJUDICATION,
        double_rated=True,
        earlier=[Rating("r1", 1), Rating("r2", 4)],
        rater_id="r3",
        score=3,
    )
    assert settled.rating.adjudication
    assert (settled.task_state, settled.final_score) == (TASK_FINAL, 3)


def test_a_rater_rates_a_response_once() -> None:
    with pytest.raises(AlreadyExists, match="already rated response 7"):
        decide_rating(
            response_id=7,
            task_state=TASK_AWAITING_SECOND,
            double_rated=True,
            earlier=[Rating("r1", 3)],
            rater_id="r1",
            score=3,
        )


def test_a_final_task_takes_no_more_ratings() -> None:
    with pytest.raises(FailedPrecondition, match="already has its final rating"):
        decide_rating(
            response_id=7,
            task_state=TASK_FINAL,
            double_rated=False,
            earlier=[Rating("r1", 3)],
            rater_id="r2",
            score=3,
        )
