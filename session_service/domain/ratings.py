"""A rating's effect on its task: a rater rates a response once, a final task takes no more ratings, and the
ratings so far resolve as toefl_core.rating says (agreement, a second rating, adjudication)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from session_service.domain.states import TASK_ADJUDICATION, TASK_AWAITING, TASK_AWAITING_SECOND, TASK_FINAL
from toefl_core.errors import AlreadyExists, FailedPrecondition
from toefl_core.rating import Rating, RatingStatus, resolve

TASK_STATE = {
    RatingStatus.UNRATED: TASK_AWAITING,
    RatingStatus.AWAITING_SECOND_RATING: TASK_AWAITING_SECOND,
    RatingStatus.NEEDS_ADJUDICATION: TASK_ADJUDICATION,
    RatingStatus.FINAL: TASK_FINAL,
}


@dataclass(frozen=True)
class RatingDecision:
    """What a new rating does: whether it adjudicates, and where its task stands after it."""

    rating: Rating
    task_state: str
    rule: str
    # Set only when the task turns final: the score the response enters the section estimate with.
    final_score: int | None


def already_rated(response_id: int) -> AlreadyExists:
    return AlreadyExists(f"you have already rated response {response_id}; a rater rates a response once")


def decide_rating(
    *,
    response_id: int,
    task_state: str,
    double_rated: bool,
    earlier: Sequence[Rating],
    rater_id: str,
    score: int,
) -> RatingDecision:
    """The effect of `rater_id` rating the response `score`, given its task's state and the ratings so far."""
    if any(r.rater_id == rater_id for r in earlier):
        raise already_rated(response_id)
    if task_state == TASK_FINAL:
        raise FailedPrecondition(f"response {response_id} already has its final rating", reason="RATING_FINAL")
    rating = Rating(rater_id, score, task_state == TASK_ADJUDICATION)
    resolution = resolve([*earlier, rating], second_rating_required=double_rated)
    final = resolution.status == RatingStatus.FINAL
    return RatingDecision(
        rating=rating,
        task_state=TASK_STATE[resolution.status],
        rule=resolution.rule,
        final_score=resolution.final_score if final else None,
    )
