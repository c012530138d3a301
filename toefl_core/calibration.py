"""Calibration of pretest items onto the operational scale: MML by EM with the operational items held fixed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import optimize  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from toefl_core.irt import GRID, dichotomous_log_likelihoods, gpcm_probs

Model = Literal["3PL", "GPCM"]
# Priors, as BILOG-MG and flexMIRT use them by default: they keep a and c off the boundaries where a small or
# unlucky sample would put them. The c prior still weighs at a thousand responses: few examinees answer far
# below an item's b, where c shows, and b's error follows c's (docs/calibration-recovery.md).
LOG_A_SD = 0.5  # log a ~ N(log m, 0.5^2), m the median a of the operational items (1 without them)
# c ~ Beta(5, 17): Swaminathan and Gifford's Beta(20p + 1, 20(1 - p) + 1) at p = 0.2, BILOG-MG's default (five
# options). Its mode 0.2 lies below the 0.25 of blind guessing among four options, as lower asymptotes often do:
# distractors draw the weakest examinees (Hambleton, Swaminathan and Rogers 1991, Fundamentals of IRT).
C_PRIOR = (5.0, 17.0)
LOCATION_PRIOR_SD = 3.0  # b and GPCM steps ~ N(0, 3^2): only against runaway estimates of extreme items
METHOD = (
    "MML-EM, operational items fixed, population N(mu, sigma) estimated; priors log a ~ N(0, 0.5), "
    "c ~ Beta(5, 17), b and steps ~ N(0, 3); SE from the observed information"
)
DEFAULT_MIN_RESPONSES = 500
MAX_CYCLES = 300
TOLERANCE = 1e-4


@dataclass(frozen=True)
class PretestData:
    """The responses to one pretest item: who (row of the anchor matrix) scored what.

    `fixed_c` is True for an open item (no options to guess among), whose lower asymptote stays 0.
    """

    item_id: str
    model: Model
    # Highest score: 1 for 3PL, the number of GPCM steps otherwise.
    categories: int
    persons: NDArray[np.intp]
    scores: NDArray[np.intp]
    fixed_c: bool = False


@dataclass(frozen=True)
class Estimate:
    item_id: str
    model: Model
    sample_size: int
    a: float
    b: float
    c: float
    steps: tuple[float, ...]
    se_a: float
    se_b: float
    se_c: float
    se_steps: tuple[float, ...]


@dataclass(frozen=True)
class Calibration:
    estimates: list[Estimate]
    # Item id -> responses, for the items with fewer than the minimum.
    too_few: dict[str, int]
    population_mean: float
    population_sd: float
    cycles: int
    converged: bool
    persons: int = 0
    notes: list[str] = field(default_factory=list)


def _prior_weights(mean: float, sd: float, grid: NDArray[np.float64]) -> NDArray[np.float64]:
    log_weights = -0.5 * ((grid - mean) / sd) ** 2
    weights = np.exp(log_weights - log_weights.max())
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _unpack(item: PretestData, x: NDArray[np.float64]) -> tuple[float, float, float, NDArray[np.float64]]:
    """(a, b, c, steps) from the optimiser's unconstrained vector: log a, then b and logit c (3PL) or the steps."""
    a = float(np.exp(np.clip(x[0], -4.0, 2.0)))
    if item.model == "GPCM":
        steps = np.asarray(x[1:], dtype=np.float64)
        return a, float(steps.mean()), 0.0, steps
    c = 0.0 if item.fixed_c else float(1.0 / (1.0 + np.exp(-x[2])))
    return a, float(x[1]), c, np.empty(0)


def _log_probs(item: PretestData, x: NDArray[np.float64], grid: NDArray[np.float64]) -> NDArray[np.float64]:
    """log P(score | theta) of every score 0..categories on the grid: shape (categories + 1, len(grid))."""
    a, b, c, steps = _unpack(item, x)
    if item.model == "GPCM":
        return np.asarray(np.log(np.clip(gpcm_probs(grid, a, steps), 1e-300, None)).T, dtype=np.float64)
    # Two "items" with the same parameters, one answered wrong and one right: the rows of scores 0 and 1.
    return dichotomous_log_likelihoods([a, a], [b, b], [c, c], [0, 1], grid)


def _log_prior(item: PretestData, x: NDArray[np.float64], log_a_centre: float) -> float:
    """The log prior density up to a constant (the optimiser and the Hessian need no more), in plain arithmetic:
    it runs at every step of every item's optimisation."""
    a, b, c, steps = _unpack(item, x)
    # A normal prior on log a, the scale the optimiser works in: its mode is the median m (a lognormal density
    # in a would put its mode at m exp(-0.25), pulling every slope down by a fifth).
    value = -0.5 * ((math.log(a) - log_a_centre) / LOG_A_SD) ** 2
    if item.model == "GPCM":
        return value - 0.5 * float((steps * steps).sum()) / LOCATION_PRIOR_SD**2
    value -= 0.5 * (b / LOCATION_PRIOR_SD) ** 2
    if not item.fixed_c:
        value += (C_PRIOR[0] - 1) * math.log(c) + (C_PRIOR[1] - 1) * math.log1p(-c)
    return value


def _start(item: PretestData) -> NDArray[np.float64]:
    mean = float(item.scores.mean()) / item.categories
    if item.model == "GPCM":
        centre = -math.log(max(mean, 0.02) / max(1 - mean, 0.02))
        return np.concatenate([[0.0], np.linspace(centre - 1.0, centre + 1.0, item.categories)])
    guess = 0.0 if item.fixed_c else 0.2
    above = min(max((mean - guess) / (1 - guess), 0.02), 0.98)
    x = [0.0, -math.log(above / (1 - above))]
    return np.array(x if item.fixed_c else [*x, math.log(0.2 / 0.8)], dtype=np.float64)


def _expected_counts(item: PretestData, posterior: NDArray[np.float64]) -> NDArray[np.float64]:
    """r[k, q]: expected number of the item's respondents at grid point q who scored k."""
    counts = np.zeros((item.categories + 1, posterior.shape[1]))
    np.add.at(counts, item.scores, posterior[item.persons])
    return counts


def _m_step(
    log_a_centre: float,
    item: PretestData,
    counts: NDArray[np.float64],
    x: NDArray[np.float64],
    grid: NDArray[np.float64],
) -> NDArray[np.float64]:
    def objective(candidate: NDArray[np.float64]) -> float:
        return -float((counts * _log_probs(item, candidate, grid)).sum()) - _log_prior(
            item, candidate, log_a_centre
        )

    found = optimize.minimize(objective, x, method="L-BFGS-B", bounds=_bounds(item))
    return np.asarray(found.x, dtype=np.float64)


def _bounds(item: PretestData) -> list[tuple[float, float]]:
    log_a = (math.log(0.05), math.log(6.0))
    if item.model == "GPCM":
        return [log_a] + [(-8.0, 8.0)] * item.categories
    return [log_a, (-8.0, 8.0)] + ([] if item.fixed_c else [(-7.0, 1.0)])


def _natural(item: PretestData, x: NDArray[np.float64]) -> NDArray[np.float64]:
    a, b, c, steps = _unpack(item, x)
    if item.model == "GPCM":
        return np.concatenate([[a], steps])
    return np.array([a, b] if item.fixed_c else [a, b, c])


def _to_unconstrained(item: PretestData, natural: NDArray[np.float64]) -> NDArray[np.float64]:
    values = np.array(natural, dtype=np.float64)
    values[0] = math.log(values[0])
    if item.model == "3PL" and not item.fixed_c:
        values[2] = math.log(values[2] / (1 - values[2]))
    return values


def _covariance(
    log_a_centre: float,
    item: PretestData,
    x: NDArray[np.float64],
    others: NDArray[np.float64],
    grid: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Covariance of (a, b[, c]) or (a, steps): the inverse of the observed information of the marginal log
    posterior of this item alone, its respondents' other responses and the population held at their estimates (a
    numerical Hessian in the natural parameters). Cross-information with the other pretest items is left out: they
    share respondents but not parameters, and it is small beside an item's own."""
    natural = _natural(item, x)

    def log_posterior(values: NDArray[np.float64]) -> float:
        candidate = _to_unconstrained(item, values)
        rows = _log_probs(item, candidate, grid)[item.scores]
        joint = others + rows
        peak = joint.max(axis=1, keepdims=True)
        marginal = peak[:, 0] + np.log(np.exp(joint - peak).sum(axis=1))
        return float(marginal.sum()) + _log_prior(item, candidate, log_a_centre)

    size = len(natural)
    steps = 1e-4 * np.maximum(np.abs(natural), 0.1)
    hessian = np.zeros((size, size))
    for i in range(size):
        for j in range(i, size):
            total = 0.0
            for si, sj, sign in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                shifted = natural.copy()
                shifted[i] += si * steps[i]
                shifted[j] += sj * steps[j]
                total += sign * log_posterior(shifted)
            hessian[i, j] = hessian[j, i] = total / (4 * steps[i] * steps[j])
    try:
        return np.asarray(np.linalg.inv(-hessian), dtype=np.float64)
    except np.linalg.LinAlgError:
        return np.full((size, size), math.nan)


def calibrate(
    anchor: NDArray[np.float64],
    items: Sequence[PretestData],
    *,
    min_responses: int = DEFAULT_MIN_RESPONSES,
    a_prior_median: float = 1.0,
    grid: NDArray[np.float64] = GRID,
    max_cycles: int = MAX_CYCLES,
    tolerance: float = TOLERANCE,
) -> Calibration:
    """Estimate the pretest items' parameters by marginal maximum likelihood (Bock-Aitkin EM) on the scale that the
    operational items fix.

    `anchor[p, q]` is person p's log-likelihood at grid point q of their operational responses (items held at
    their parameters): the scale comes from them alone. The population is normal with a mean and SD estimated with
    the items, so that a calibration sample abler or weaker than the reference population does not shift the new
    items. Items with fewer than `min_responses` responses are left out and reported. `a_prior_median` centres
    the prior of the slopes (the job passes the operational items' median: new items are written like them).
    """
    # SciPy's L-BFGS-B (since 1.15) calls LAPACK on its 2-4 parameters, and a multi-threaded OpenBLAS wakes its
    # threads for each call: three to four times the CPU for the same estimates on a shared two-core machine
    # (scipy/scipy#22438, OpenMathLib/OpenBLAS#5383). One BLAS thread while calibrating, as SciPy advises.
    with threadpool_limits(limits=1, user_api="blas"):
        return _calibrate(
            anchor,
            items,
            min_responses=min_responses,
            a_prior_median=a_prior_median,
            grid=grid,
            max_cycles=max_cycles,
            tolerance=tolerance,
        )


def _calibrate(
    anchor: NDArray[np.float64],
    items: Sequence[PretestData],
    *,
    min_responses: int,
    a_prior_median: float,
    grid: NDArray[np.float64],
    max_cycles: int,
    tolerance: float,
) -> Calibration:
    log_a_centre = math.log(a_prior_median)
    too_few = {item.item_id: len(item.scores) for item in items if len(item.scores) < min_responses}
    chosen = [item for item in items if len(item.scores) >= min_responses]
    mean, sd = 0.0, 1.0
    params = [_start(item) for item in chosen]
    converged = False
    cycles = 0
    while cycles < max_cycles:
        cycles += 1
        log_post = anchor + np.log(_prior_weights(mean, sd, grid))[None, :]
        for item, x in zip(chosen, params, strict=True):
            log_post[item.persons] += _log_probs(item, x, grid)[item.scores]
        posterior = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        posterior /= posterior.sum(axis=1, keepdims=True)
        person_mean = posterior @ grid
        person_second = posterior @ (grid * grid)
        new_mean = float(person_mean.mean())
        new_sd = math.sqrt(max(float(person_second.mean()) - new_mean**2, 1e-4))
        new_params = [
            _m_step(log_a_centre, item, _expected_counts(item, posterior), x, grid)
            for item, x in zip(chosen, params, strict=True)
        ]
        change = max(
            [abs(new_mean - mean), abs(new_sd - sd)]
            + [
                float(np.max(np.abs(_natural(item, n) - _natural(item, o))))
                for item, n, o in zip(chosen, new_params, params, strict=True)
            ]
        )
        mean, sd, params = new_mean, new_sd, new_params
        if change < tolerance:
            converged = True
            break
    log_post = anchor + np.log(_prior_weights(mean, sd, grid))[None, :]
    rows = [_log_probs(item, x, grid)[item.scores] for item, x in zip(chosen, params, strict=True)]
    for item, row in zip(chosen, rows, strict=True):
        log_post[item.persons] += row
    estimates = []
    for item, x, row in zip(chosen, params, rows, strict=True):
        others = log_post[item.persons] - row
        covariance = _covariance(log_a_centre, item, x, others, grid)
        se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        a, b, c, steps = _unpack(item, x)
        if item.model == "GPCM":
            # b of a GPCM item is the mean of its steps: its variance sums the steps' covariances.
            se_b = math.sqrt(max(float(covariance[1:, 1:].sum()), 0.0)) / len(steps)
            se_a, se_c, se_steps = float(se[0]), 0.0, se[1:]
        else:
            se_a, se_b = float(se[0]), float(se[1])
            se_c = 0.0 if item.fixed_c else float(se[2])
            se_steps = np.empty(0)
        estimates.append(
            Estimate(
                item_id=item.item_id,
                model=item.model,
                sample_size=len(item.scores),
                a=a,
                b=b,
                c=c,
                steps=tuple(float(s) for s in steps),
                se_a=se_a,
                se_b=se_b,
                se_c=se_c,
                se_steps=tuple(float(s) for s in se_steps),
            )
        )
    return Calibration(
        estimates=estimates,
        too_few=too_few,
        population_mean=mean,
        population_sd=sd,
        cycles=cycles,
        converged=converged,
        persons=anchor.shape[0],
    )
