"""Double-rating selection, final-rating rules and rater statistics against hand computations."""

from __future__ import annotations

import pytest

from toefl_core.rating import (
    Rating,
    RatingRecord,
    RatingStatus,
    needs_second_rating,
    quadratic_weighted_kappa,
    rater_statistics,
    resolve,
)

IDS = [f"rsp-{n:06d}" for n in range(10_000)]


def selected(share: float, salt: str = "2026") -> list[str]:
    return [response_id for response_id in IDS if needs_second_rating(response_id, share, salt)]


@pytest.mark.parametrize("share", [0.1, 0.2, 0.5])
def test_double_rating_share_is_close_over_many_responses(share: float) -> None:
    # Binomial SD over 10,000 ids is at most 0.005; the tolerance is twice that.
    assert abs(len(selected(share)) / len(IDS) - share) <= 0.01


def test_double_rating_is_replayable_nested_and_salted() -> None:
    first = selected(0.2)
    assert selected(0.2) == first
    assert set(selected(0.1)) <= set(first), "a larger share keeps every response a smaller one selected"
    other = selected(0.2, salt="2027")
    assert other != first and abs(len(other) - len(first)) <= 200
    assert selected(0.0) == [] and selected(1.0) == IDS


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_double_rating_share_must_be_a_fraction(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        needs_second_rating("rsp-1", share, "salt")


def test_no_rating_and_single_rating() -> None:
    assert resolve([]).status is RatingStatus.UNRATED
    single = resolve([Rating("r1", 4)])
    assert (single.status, single.final_score) == (RatingStatus.FINAL, 4)
    waiting = resolve([Rating("r1", 4)], second_rating_required=True)
    assert (waiting.status, waiting.final_score) == (RatingStatus.AWAITING_SECOND_RATING, None)


@pytest.mark.parametrize(
    ("first", "second", "final"), [(3, 4, 4), (4, 3, 4), (2, 2, 2), (0, 1, 1), (4, 5, 5), (0, 0, 0)]
)
def test_two_close_ratings_give_their_mean_rounded_half_up(first: int, second: int, final: int) -> None:
    result = resolve([Rating("r1", first), Rating("r2", second)], second_rating_required=True)
    assert (result.status, result.final_score) == (RatingStatus.FINAL, final)


@pytest.mark.parametrize(("first", "second"), [(2, 4), (5, 3), (0, 5)])
def test_two_distant_ratings_go_to_adjudication(first: int, second: int) -> None:
    result = resolve([Rating("r1", first), Rating("r2", second)])
    assert (result.status, result.final_score) == (RatingStatus.NEEDS_ADJUDICATION, None)
    settled = resolve([Rating("r1", first), Rating("r2", second), Rating("adj", 1, adjudication=True)])
    assert (settled.status, settled.final_score) == (RatingStatus.FINAL, 1), "the adjudicator's score is final"
    assert "adj" in settled.rule


def test_invalid_rating_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="only once"):
        resolve([Rating("r1", 3), Rating("r1", 4)])
    with pytest.raises(ValueError, match="at most two"):
        resolve([Rating("r1", 3), Rating("r2", 4), Rating("r3", 4)])
    with pytest.raises(ValueError, match="at most two"):
        resolve([Rating("a1", 3, adjudication=True), Rating("a2", 4, adjudication=True)])
    for score in (-1, 6):
        with pytest.raises(ValueError, match=r"0\.\.5"):
            Rating("r1", score)


def test_quadratic_weighted_kappa_matches_hand_computations() -> None:
    # Pairs (0,0) (1,1) (2,3) (3,3) on 4 categories: observed weighted disagreement 1/9, expected 48/36, so
    # kappa = 1 - (1/9) / (4/3) = 11/12.
    assert quadratic_weighted_kappa([0, 1, 2, 3], [0, 1, 3, 3], categories=4) == pytest.approx(11 / 12)
    # Complete reversal at the two ends of 0..5: observed 2, expected 1, kappa -1.
    assert quadratic_weighted_kappa([0, 5], [5, 0]) == pytest.approx(-1.0)
    assert quadratic_weighted_kappa([1, 2, 4, 5], [1, 2, 4, 5]) == pytest.approx(1.0)
    assert quadratic_weighted_kappa([3, 3, 3], [3, 3, 3]) is None, "undefined without expected disagreement"
    assert quadratic_weighted_kappa([], []) is None
    with pytest.raises(ValueError, match=r"0\.\.5"):
        quadratic_weighted_kappa([6], [1])
    with pytest.raises(ValueError, match="equal length"):
        quadratic_weighted_kappa([1, 2], [1])


def test_rater_statistics_per_rater() -> None:
    records = [
        RatingRecord("r1", "A", 3),
        RatingRecord("r1", "B", 3),
        RatingRecord("r2", "A", 2),
        RatingRecord("r2", "B", 4),
        RatingRecord("r3", "A", 5),
        RatingRecord("r3", "C", 4),
        RatingRecord("r4", "B", 1),
    ]
    stats = {s.rater_id: s for s in rater_statistics(records)}
    assert sorted(stats) == ["A", "B", "C"]
    a, b, c = stats["A"], stats["B"], stats["C"]
    assert a.pairs == 3
    assert (a.exact_agreement, a.adjacent_agreement) == pytest.approx((1 / 3, 2 / 3))
    # A: (3,3) (2,4) (5,4); observed weighted disagreement 5/25, expected 17/75, so kappa = 1 - 15/17 = 2/17.
    assert a.quadratic_weighted_kappa == pytest.approx(2 / 17)
    assert (b.pairs, b.exact_agreement, b.adjacent_agreement) == (2, 0.5, 0.5)
    assert (c.pairs, c.exact_agreement, c.adjacent_agreement) == (1, 0.0, 1.0)
    assert c.quadratic_weighted_kappa == pytest.approx(0.0)
