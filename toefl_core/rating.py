"""Rating rules for rated responses: who is rated twice, the final rating, and rater agreement statistics."""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RUBRIC_MAX = 5
# Two ratings this far apart or more go to an adjudicator.
ADJUDICATION_GAP = 2
_HASH_SPACE = 2**64


def needs_second_rating(response_id: str, share: float, salt: str) -> bool:
    """Whether a response is also rated by a second, blind rater.

    Decided by hashing (salt, response id) to a uniform number in [0, 1) and comparing it with `share`, so the
    choice is replayable, cannot be steered by the order of arrival, and the selected fraction tends to `share`.
    A new salt draws a new, independent selection.
    """
    if not (math.isfinite(share) and 0.0 <= share <= 1.0):
        raise ValueError(f"the double-rating share must lie in [0, 1], got {share}")
    # The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
    digest = hashlib.sha256(f"{salt}\0{response_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * _HASH_SPACE


@dataclass(frozen=True)
class Rating:
    """One rater's rubric score (0..5) of one response; an adjudicator's rating settles a disagreement."""

    rater_id: str
    score: int
    adjudication: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.score, bool) or not isinstance(self.score, int) or not 0 <= self.score <= RUBRIC_MAX:
            raise ValueError(f"a rubric score must be an integer in 0..{RUBRIC_MAX}, got {self.score!r}")


class RatingStatus(enum.Enum):
    UNRATED = "unrated"
    AWAITING_SECOND_RATING = "awaiting_second_rating"
    NEEDS_ADJUDICATION = "needs_adjudication"
    FINAL = "final"


@dataclass(frozen=True)
class Resolution:
    """Where a response stands; `final_score` is set only when the status is FINAL. `rule` says why, for audit."""

    status: RatingStatus
    final_score: int | None
    rule: str


def resolve(ratings: Sequence[Rating], *, second_rating_required: bool = False) -> Resolution:
    """The final rating of a response from its ratings.

    - No rating: UNRATED.
    - One rating: final = that score, unless the response was selected for a second rating (then
      AWAITING_SECOND_RATING).
    - Two ratings within 1 point: final = their mean rounded half up to an integer (3 and 4 -> 4; 2 and 2 -> 2),
      which gives the benefit of the doubt to the test taker when the raters are one point apart.
    - Two ratings 2 or more apart: NEEDS_ADJUDICATION until an adjudicator rates the response.
    - An adjudicator's rating: final = the adjudicator's score, whatever the first two said.
    A rater may rate a response only once; more than two regular ratings or more than one adjudication is an error.
    """
    regular = [r for r in ratings if not r.adjudication]
    adjudications = [r for r in ratings if r.adjudication]
    raters = [r.rater_id for r in ratings]
    if len(set(raters)) != len(raters):
        raise ValueError(f"a rater may rate a response only once, got raters {raters}")
    if len(regular) > 2 or len(adjudications) > 1:
        raise ValueError(
            f"a response has at most two ratings and one adjudication, got {len(regular)} and {len(adjudications)}"
        )
    if adjudications:
        score = adjudications[0].score
        return Resolution(RatingStatus.FINAL, score, f"adjudicator {adjudications[0].rater_id} scored {score}")
    if not regular:
        return Resolution(RatingStatus.UNRATED, None, "no rating yet")
    if len(regular) == 1:
        if second_rating_required:
            return Resolution(RatingStatus.AWAITING_SECOND_RATING, None, "selected for a second, blind rating")
        return Resolution(RatingStatus.FINAL, regular[0].score, "single rating")
    first, second = regular[0].score, regular[1].score
    if abs(first - second) >= ADJUDICATION_GAP:
        return Resolution(
            RatingStatus.NEEDS_ADJUDICATION,
            None,
            f"ratings {first} and {second} differ by {ADJUDICATION_GAP} or more",
        )
    # (x + y + 1) // 2 is the mean rounded half up, in integers.
    final = (first + second + 1) // 2
    return Resolution(RatingStatus.FINAL, final, f"mean of {first} and {second} rounded half up")


def quadratic_weighted_kappa(
    x: Sequence[int], y: Sequence[int], *, categories: int = RUBRIC_MAX + 1
) -> float | None:
    """Cohen's kappa with quadratic weights between two paired ratings on 0..categories-1.

    None when it is undefined: no pairs, or no expected disagreement (both raters always gave one same category).
    """
    first, second = np.asarray(x, dtype=np.intp), np.asarray(y, dtype=np.intp)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(
            f"paired ratings must be two 1-D sequences of equal length, got {first.shape}, {second.shape}"
        )
    if first.size == 0:
        return None
    if first.min() < 0 or second.min() < 0 or first.max() >= categories or second.max() >= categories:
        raise ValueError(f"ratings must lie in 0..{categories - 1}")
    observed = np.zeros((categories, categories))
    np.add.at(observed, (first, second), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / first.size
    levels = np.arange(categories)
    weights = (levels[:, None] - levels[None, :]) ** 2 / (categories - 1) ** 2
    expected_disagreement = float((weights * expected).sum())
    if expected_disagreement == 0.0:
        return None
    return 1.0 - float((weights * observed).sum()) / expected_disagreement


@dataclass(frozen=True)
class RatingRecord:
    """A regular (not adjudication) rating of a response, as stored."""

    response_id: str
    rater_id: str
    score: int


@dataclass(frozen=True)
class RaterStatistics:
    """A rater's agreement with the other rater of the responses both rated."""

    rater_id: str
    pairs: int
    exact_agreement: float
    adjacent_agreement: float
    quadratic_weighted_kappa: float | None


def rater_statistics(records: Sequence[RatingRecord]) -> list[RaterStatistics]:
    """Per rater (sorted by id): exact agreement, adjacent agreement (|difference| <= 1) and quadratic weighted
    kappa against the other rating of the same responses. Only responses with exactly two ratings count; a rater
    without such responses is left out.
    """
    by_response: dict[str, list[RatingRecord]] = {}
    for record in records:
        by_response.setdefault(record.response_id, []).append(record)
    pairs: dict[str, tuple[list[int], list[int]]] = {}
    for ratings in by_response.values():
        # A rater paired with themself would inflate their own agreement.
        if len(ratings) != 2 or ratings[0].rater_id == ratings[1].rater_id:
            continue
        for own, other in (ratings, ratings[::-1]):
            mine, theirs = pairs.setdefault(own.rater_id, ([], []))
            mine.append(own.score)
            theirs.append(other.score)
    statistics = []
    for rater_id in sorted(pairs):
        mine, theirs = pairs[rater_id]
        gaps = np.abs(np.asarray(mine) - np.asarray(theirs))
        statistics.append(
            RaterStatistics(
                rater_id=rater_id,
                pairs=len(mine),
                exact_agreement=float(np.mean(gaps == 0)),
                adjacent_agreement=float(np.mean(gaps <= 1)),
                quadratic_weighted_kappa=quadratic_weighted_kappa(mine, theirs),
            )
        )
    return statistics
