"""IRT functions checked against values computed independently in plain Python."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from toefl_core.irt import (
    GRID,
    Ability,
    PolytomousResponse,
    dichotomous_log_likelihoods,
    eap,
    gpcm_probs,
    info_3pl,
    info_gpcm,
    polytomous_log_likelihood,
    posterior,
    prob_3pl,
    select_randomesque,
)

ITEMS_3PL = [(1.2, 0.0, 0.2), (0.5, -1.5, 0.0), (2.5, 1.0, 0.25), (1.0, 2.0, 0.1)]
THETAS = [-4.0, -1.3, 0.0, 0.7, 2.5, 5.0]
GPCM_ITEMS = [(1.0, (-1.0, 0.0, 1.0)), (0.7, (-2.0, -0.5, 0.4, 1.1, 2.3)), (1.8, (0.5,)), (1.2, (1.0, -0.5))]


def p3pl(theta: float, a: float, b: float, c: float) -> float:
    return c + (1 - c) / (1 + math.exp(-a * (theta - b)))


def gpcm_brute(theta: float, a: float, steps: tuple[float, ...]) -> list[float]:
    numerators = [math.exp(sum(a * (theta - step) for step in steps[:k])) for k in range(len(steps) + 1)]
    total = sum(numerators)
    return [n / total for n in numerators]


def central_difference(f: Callable[[float], float], x: float, h: float = 1e-5) -> float:
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize(("a", "b", "c"), ITEMS_3PL)
def test_prob_3pl_matches_the_formula(a: float, b: float, c: float) -> None:
    got = prob_3pl(THETAS, a, b, c)
    assert got == pytest.approx([p3pl(t, a, b, c) for t in THETAS], rel=1e-12)


def test_prob_3pl_broadcasts_items_against_thetas() -> None:
    a, b, c = (np.array(column) for column in zip(*ITEMS_3PL, strict=True))
    got = prob_3pl(np.array(THETAS)[:, None], a, b, c)
    assert got.shape == (len(THETAS), len(ITEMS_3PL))
    for i, theta in enumerate(THETAS):
        for j, item in enumerate(ITEMS_3PL):
            assert got[i, j] == pytest.approx(p3pl(theta, *item), rel=1e-12)


def test_prob_3pl_is_finite_far_from_the_item() -> None:
    got = prob_3pl([-1000.0, 1000.0], 2.5, 0.0, 0.0)
    assert got.tolist() == [0.0, 1.0]


@pytest.mark.parametrize(("a", "b", "c"), ITEMS_3PL)
def test_info_3pl_matches_numeric_derivative(a: float, b: float, c: float) -> None:
    got = info_3pl(THETAS, a, b, c)
    for theta, info in zip(THETAS, got, strict=True):
        p = p3pl(theta, a, b, c)
        slope = central_difference(lambda t: p3pl(t, a, b, c), theta)
        # Fisher information of a Bernoulli response: P'^2 / (P Q).
        assert info == pytest.approx(slope**2 / (p * (1 - p)), rel=1e-6, abs=1e-12)


def test_info_3pl_of_a_2pl_item_peaks_at_b_with_a_squared_over_four() -> None:
    assert float(info_3pl(0.8, 1.6, 0.8, 0.0)) == pytest.approx(1.6**2 / 4, rel=1e-12)


def test_info_3pl_keeps_its_digits_in_the_upper_tail() -> None:
    a, b, c = 2.5, 0.0, 0.2
    thetas = [15.0, 20.0, 40.0]
    # Q written as (1 - c) / (1 + exp(z)) rather than 1 - P, which rounds to 0 out here.
    expected = []
    for theta in thetas:
        z = a * (theta - b)
        p = p3pl(theta, a, b, c)
        q = (1 - c) / (1 + math.exp(z))
        expected.append(a**2 * (q / p) * ((p - c) / (1 - c)) ** 2)
    assert info_3pl(thetas, a, b, c) == pytest.approx(expected, rel=1e-9)
    assert np.all(np.isfinite(info_3pl([-1000.0, 1000.0], a, b, c)))


@pytest.mark.parametrize(("a", "steps"), GPCM_ITEMS)
def test_gpcm_probs_match_a_brute_force_sum(a: float, steps: tuple[float, ...]) -> None:
    got = gpcm_probs(THETAS, a, steps)
    assert got.shape == (len(THETAS), len(steps) + 1)
    for row, theta in zip(got, THETAS, strict=True):
        assert row == pytest.approx(gpcm_brute(theta, a, steps), rel=1e-10, abs=1e-300)


def test_gpcm_probs_accept_a_scalar_theta_and_stay_finite_far_out() -> None:
    assert gpcm_probs(0.3, 1.0, [0.0]).shape == (1, 2)
    extreme = gpcm_probs([-500.0, 500.0], 2.5, (-1.0, 0.0, 1.0, 2.0, 3.0))
    assert np.all(np.isfinite(extreme))
    assert extreme[0, 0] == pytest.approx(1.0)
    assert extreme[1, -1] == pytest.approx(1.0)


def test_gpcm_needs_steps() -> None:
    with pytest.raises(ValueError, match="step"):
        gpcm_probs([0.0], 1.0, [])


@pytest.mark.parametrize(("a", "steps"), GPCM_ITEMS)
def test_info_gpcm_matches_a_times_the_slope_of_the_expected_score(a: float, steps: tuple[float, ...]) -> None:
    def expected_score(theta: float) -> float:
        return sum(k * p for k, p in enumerate(gpcm_brute(theta, a, steps)))

    got = info_gpcm(THETAS, a, steps)
    assert got.shape == (len(THETAS),)
    for theta, info in zip(THETAS, got, strict=True):
        # For the GPCM, I(theta) = a * dE[score]/dtheta (= a^2 Var(score)).
        assert info == pytest.approx(a * central_difference(expected_score, theta), rel=1e-6, abs=1e-12)


def test_gpcm_with_one_step_is_the_2pl() -> None:
    assert info_gpcm(THETAS, 1.4, [0.3]) == pytest.approx(info_3pl(THETAS, 1.4, 0.3, 0.0), rel=1e-12)
    assert gpcm_probs(THETAS, 1.4, [0.3])[:, 1] == pytest.approx(prob_3pl(THETAS, 1.4, 0.3, 0.0), rel=1e-12)


def brute_force_eap(
    dichotomous: list[tuple[float, float, float, int]],
    polytomous: list[tuple[float, tuple[float, ...], int]],
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
) -> tuple[float, float]:
    """Posterior mean and SD by direct integration over a fine grid, one product per point."""
    points = [-8.0 + 16.0 * i / 4000 for i in range(4001)]
    weights = []
    for theta in points:
        w = math.exp(-0.5 * ((theta - prior_mean) / prior_sd) ** 2)
        for a, b, c, u in dichotomous:
            p = p3pl(theta, a, b, c)
            w *= p if u == 1 else 1 - p
        for a, steps, score in polytomous:
            w *= gpcm_brute(theta, a, steps)[score]
        weights.append(w)
    total = sum(weights)
    mean = sum(w * t for w, t in zip(weights, points, strict=True)) / total
    var = sum(w * (t - mean) ** 2 for w, t in zip(weights, points, strict=True)) / total
    return mean, math.sqrt(var)


def random_items(seed: int, n: int) -> list[tuple[float, float, float, int]]:
    rng = np.random.default_rng(seed)
    a = np.clip(rng.normal(1.2, 0.25, n), 0.5, 2.5)
    b = rng.normal(0.0, 1.0, n)
    c = rng.choice([0.0, 0.2], n)
    u = (rng.random(n) < 0.6).astype(int)
    return [(float(a[i]), float(b[i]), float(c[i]), int(u[i])) for i in range(n)]


def call_eap(dichotomous, polytomous=(), **kwargs) -> Ability:
    columns = list(zip(*dichotomous, strict=True)) if dichotomous else [(), (), (), ()]
    return eap(
        a=columns[0],
        b=columns[1],
        c=columns[2],
        u=columns[3],
        polytomous=[PolytomousResponse(a=a, steps=steps, score=score) for a, steps, score in polytomous],
        **kwargs,
    )


@pytest.mark.parametrize(
    ("seed", "n", "polytomous", "prior"),
    [
        (1, 5, [], (0.0, 1.0)),
        (2, 30, [], (0.0, 1.0)),
        (3, 12, [(1.0, (-1.0, 0.0, 1.0, 1.5, 2.0), 4), (0.8, (-0.5, 0.5, 1.0, 2.0, 2.5), 1)], (0.0, 1.0)),
        (4, 20, [(1.2, (-1.5, -0.5, 0.5, 1.5, 2.5), 5)], (0.5, 0.8)),
        (5, 0, [(1.0, (-1.0, 0.0, 1.0, 1.5, 2.0), 0)], (-0.2, 1.1)),
    ],
)
def test_eap_matches_direct_integration_on_a_fine_grid(seed, n, polytomous, prior) -> None:
    items = random_items(seed, n)
    expected_theta, expected_se = brute_force_eap(items, polytomous, *prior)
    got = call_eap(items, polytomous, prior_mean=prior[0], prior_sd=prior[1])
    assert got.theta == pytest.approx(expected_theta, abs=1e-5)
    assert got.se == pytest.approx(expected_se, abs=1e-5)


def test_posterior_from_rows_one_item_at_a_time_matches_eap_and_direct_integration() -> None:
    # Rows computed item by item (as a scored item caches its own) must give eap()'s figures.
    for seed in range(40):
        items = random_items(100 + seed, 1 + seed)
        polytomous: list[tuple[float, tuple[float, ...], int]] = (
            [(1.1, (-1.0, 0.0, 1.2), seed % 4)] if seed % 3 else []
        )
        rows = np.array([dichotomous_log_likelihoods([a], [b], [c], [u])[0] for a, b, c, u in items])
        poly_rows = [
            polytomous_log_likelihood(PolytomousResponse(a=a, steps=steps, score=score))
            for a, steps, score in polytomous
        ]
        got = posterior(dichotomous=rows, polytomous=poly_rows)
        whole = call_eap(items, polytomous)
        assert got.theta == pytest.approx(whole.theta, abs=1e-12)
        assert got.se == pytest.approx(whole.se, abs=1e-12)
        if seed < 5:
            expected_theta, expected_se = brute_force_eap(items, polytomous, 0.0, 1.0)
            assert got.theta == pytest.approx(expected_theta, abs=1e-5)
            assert got.se == pytest.approx(expected_se, abs=1e-5)


@pytest.mark.parametrize(("mean", "sd"), [(0.0, 1.0), (0.4, 0.8), (-0.3, 0.9)])
def test_eap_without_items_returns_the_prior(mean: float, sd: float) -> None:
    got = eap(prior_mean=mean, prior_sd=sd)
    assert got.theta == pytest.approx(mean, abs=1e-6)
    assert got.se == pytest.approx(sd, abs=1e-6)


def test_eap_on_many_items_does_not_underflow() -> None:
    n = 3000
    rng = np.random.default_rng(7)
    b = rng.normal(0.0, 1.0, n)
    # 3,000 answers on items of difficulty near 0.6, a true ability the estimate must find: the product of the
    # probabilities is far below the smallest float, the sum of their logs is not.
    u = (rng.random(n) < prob_3pl(0.6, 1.2, b, 0.2)).astype(int)
    got = eap(a=np.full(n, 1.2), b=b, c=np.full(n, 0.2), u=u)
    assert math.isfinite(got.theta)
    assert got.theta == pytest.approx(0.6, abs=0.15)
    assert 0 < got.se < 0.1


def test_eap_rises_with_correct_answers_and_shrinks_its_se() -> None:
    items = random_items(11, 20)
    all_wrong = call_eap([(a, b, c, 0) for a, b, c, _ in items])
    all_right = call_eap([(a, b, c, 1) for a, b, c, _ in items])
    fewer = call_eap(items[:5])
    more = call_eap(items)
    assert all_wrong.theta < fewer.theta < all_right.theta
    assert more.se < fewer.se < 1.0


def test_eap_uses_the_grid_it_is_given() -> None:
    items = random_items(12, 10)
    fine = call_eap(items, grid=np.linspace(-8.0, 8.0, 801))
    expected_theta, expected_se = brute_force_eap(items, [])
    assert fine.theta == pytest.approx(expected_theta, abs=1e-6)
    assert fine.se == pytest.approx(expected_se, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"a": [1.0, 1.0], "b": [0.0], "c": [0.2], "u": [1]}, "equal length"),
        ({"a": [1.0], "b": [0.0], "c": [0.2], "u": []}, "equal length"),
        ({"a": [[1.0]], "b": [[0.0]], "c": [[0.2]], "u": [[1]]}, "1-D"),
        ({"a": [1.0, 1.0], "b": [0.0, 0.0], "c": [0.2, 0.2], "u": [1, 2]}, "0 or 1"),
        ({"a": [1.0], "b": [0.0], "c": [1.0], "u": [1]}, r"\[0, 1\)"),
        ({"a": [-1.0], "b": [0.0], "c": [0.2], "u": [1]}, "positive"),
        ({"a": [1.0], "b": [float("nan")], "c": [0.2], "u": [1]}, "finite"),
        ({"prior_sd": 0.0}, "prior"),
        ({"grid": np.array([0.0])}, "grid"),
        ({"grid": np.zeros((3, 3))}, "grid"),
    ],
)
def test_eap_rejects_bad_input(kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eap(**kwargs)


@pytest.mark.parametrize(
    ("a", "steps", "score", "message"),
    [
        (1.0, (0.0, 1.0), 3, r"outside 0\.\.2"),
        (1.0, (0.0, 1.0), -1, r"outside 0\.\.2"),
        (1.0, (0.0,), 1.0, "integer"),
        (1.0, (), 0, "at least one step"),
        (0.0, (0.0,), 0, "positive"),
        (1.0, (float("inf"),), 0, "finite"),
    ],
)
def test_polytomous_response_rejects_bad_input(a, steps, score, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eap(polytomous=[PolytomousResponse(a=a, steps=steps, score=score)])


def test_polytomous_response_keeps_steps_as_a_tuple_of_floats() -> None:
    response = PolytomousResponse(a=1.0, steps=[0, 1], score=np.int64(2))  # type: ignore[arg-type]
    assert response.steps == (0.0, 1.0)


def test_grid_is_the_fixed_read_only_quadrature_grid() -> None:
    assert GRID.shape == (61,)
    assert GRID[0] == -6.0
    assert GRID[-1] == 6.0
    with pytest.raises(ValueError, match="read-only"):
        GRID[0] = 0.0


def test_randomesque_never_leaves_the_top_k_and_covers_all_of_it() -> None:
    information = np.array([0.3, 2.0, 0.1, 1.5, 1.9, 0.0, 1.7, 0.2])
    top4 = {1, 4, 6, 3}
    rng = np.random.default_rng(2026)
    picks = [select_randomesque(information, 4, rng) for _ in range(2000)]
    assert set(picks) == top4
    counts = [picks.count(i) for i in sorted(top4)]
    # Uniform over 4: each about 500 of 2,000; a biased choice would fall far outside this band.
    assert all(400 < count < 600 for count in counts)


def test_randomesque_breaks_ties_by_lower_index() -> None:
    rng = np.random.default_rng(1)
    picks = {select_randomesque(np.array([0.5, 1.0, 1.0, 1.0, 1.0]), 2, rng) for _ in range(200)}
    assert picks == {1, 2}


def test_randomesque_breaks_ties_by_lower_index_in_a_long_array() -> None:
    # Beyond a handful of entries NumPy's default sort is not stable; the selection must still be.
    information = np.random.default_rng(5).choice([0.1, 0.2, 0.3], 500)
    best = [i for i, value in enumerate(information.tolist()) if value == 0.3][:5]
    rng = np.random.default_rng(6)
    assert {select_randomesque(information, 5, rng) for _ in range(300)} == set(best)


@pytest.mark.parametrize(("k", "allowed"), [(0, {2}), (-3, {2}), (1, {2}), (10, {0, 1, 2})])
def test_randomesque_clips_k(k: int, allowed: set[int]) -> None:
    rng = np.random.default_rng(3)
    picks = {select_randomesque(np.array([0.2, 0.1, 0.9]), k, rng) for _ in range(300)}
    assert picks == allowed


def test_randomesque_is_reproducible_with_a_seed() -> None:
    information = np.linspace(0.0, 1.0, 30)
    first = [select_randomesque(information, 5, np.random.default_rng(9)) for _ in range(3)]
    assert len(set(first)) == 1


def test_randomesque_rejects_an_empty_array() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        select_randomesque(np.array([]), 3, np.random.default_rng(0))
