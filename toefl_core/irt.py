"""Item response theory: 3PL and GPCM probabilities and information, EAP ability, randomesque selection."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

GRID: NDArray[np.float64] = np.linspace(-6.0, 6.0, 61)
# Shared default of every estimate: read-only so that no caller can shift it for everyone else.
GRID.flags.writeable = False


def _floats(values: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)


def _log_sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    # log(1 / (1 + exp(-z))) without overflow for large |z| and without log(0) far in the tails.
    return -np.logaddexp(0.0, -z)


def prob_3pl(theta: ArrayLike, a: ArrayLike, b: ArrayLike, c: ArrayLike) -> NDArray[np.float64]:
    """P(correct) = c + (1 - c) / (1 + exp(-a (theta - b))), elementwise with broadcasting."""
    guess = _floats(c)
    z = _floats(a) * (_floats(theta) - _floats(b))
    return np.asarray(guess + (1.0 - guess) * np.exp(_log_sigmoid(z)), dtype=np.float64)


def info_3pl(theta: ArrayLike, a: ArrayLike, b: ArrayLike, c: ArrayLike) -> NDArray[np.float64]:
    """Fisher information a^2 (Q / P) ((P - c) / (1 - c))^2 of the 3PL, elementwise with broadcasting."""
    slope = _floats(a)
    guess = _floats(c)
    z = slope * (_floats(theta) - _floats(b))
    above_guess = np.exp(_log_sigmoid(z))
    # Q = (1 - c) * sigmoid(-z), computed directly: 1 - P loses every digit once P rounds to 1.
    wrong = (1.0 - guess) * np.exp(_log_sigmoid(-z))
    right = guess + (1.0 - guess) * above_guess
    return np.asarray(slope**2 * above_guess**2 * wrong / right, dtype=np.float64)


def _gpcm_log_probs(theta: NDArray[np.float64], a: float, steps: NDArray[np.float64]) -> NDArray[np.float64]:
    """Log category probabilities, shape (len(theta), len(steps) + 1)."""
    numerators = np.zeros((theta.shape[0], steps.shape[0] + 1))
    np.cumsum(a * (theta[:, None] - steps[None, :]), axis=1, out=numerators[:, 1:])
    # Subtracting the row maximum keeps exp() finite however far theta is from the steps.
    numerators -= numerators.max(axis=1, keepdims=True)
    return np.asarray(numerators - np.log(np.exp(numerators).sum(axis=1, keepdims=True)), dtype=np.float64)


def _gpcm_steps(steps: Sequence[float] | NDArray[np.float64]) -> NDArray[np.float64]:
    values = _floats(steps)
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(
            f"GPCM steps must be a non-empty 1-D sequence of step difficulties, got shape {values.shape}"
        )
    return values


def gpcm_probs(theta: ArrayLike, a: float, steps: Sequence[float] | NDArray[np.float64]) -> NDArray[np.float64]:
    """Category probabilities of the generalized partial credit model, shape (len(theta), len(steps) + 1).

    P_k is proportional to exp(sum_{v <= k} a (theta - b_v)), with an empty sum for category 0.
    """
    return np.exp(_gpcm_log_probs(np.atleast_1d(_floats(theta)), a, _gpcm_steps(steps)))


def info_gpcm(theta: ArrayLike, a: float, steps: Sequence[float] | NDArray[np.float64]) -> NDArray[np.float64]:
    """Fisher information a^2 Var(score | theta) of a GPCM item, shape (len(theta),)."""
    probs = gpcm_probs(theta, a, steps)
    categories = np.arange(probs.shape[1], dtype=np.float64)
    mean = probs @ categories
    return np.asarray(a**2 * (probs @ categories**2 - mean**2), dtype=np.float64)


@dataclass(frozen=True)
class PolytomousResponse:
    """A rated response (rubric score 0..len(steps)) to a GPCM item."""

    a: float
    steps: tuple[float, ...]
    score: int

    def __post_init__(self) -> None:
        # Frozen: normalising a list of steps into a tuple needs object.__setattr__.
        object.__setattr__(self, "steps", tuple(float(step) for step in self.steps))
        if not self.steps:
            raise ValueError("a polytomous item needs at least one step difficulty")
        if not all(math.isfinite(step) for step in self.steps):
            raise ValueError(f"GPCM steps must be finite, got {self.steps}")
        if not (math.isfinite(self.a) and self.a > 0):
            raise ValueError(f"GPCM discrimination a must be finite and positive, got {self.a}")
        if isinstance(self.score, bool) or not isinstance(self.score, int | np.integer):
            raise ValueError(f"a polytomous score must be an integer, got {self.score!r}")
        if not 0 <= self.score <= len(self.steps):
            raise ValueError(
                f"score {self.score} is outside 0..{len(self.steps)} for an item with {len(self.steps)} steps"
            )


@dataclass(frozen=True)
class Ability:
    """An ability estimate and its standard error (the posterior SD)."""

    theta: float
    se: float


def _checked_grid(prior_mean: float, prior_sd: float, grid: NDArray[np.float64]) -> NDArray[np.float64]:
    if not (math.isfinite(prior_sd) and prior_sd > 0 and math.isfinite(prior_mean)):
        raise ValueError(f"the prior needs a finite mean and a positive SD, got N({prior_mean}, {prior_sd}^2)")
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(f"the quadrature grid must be 1-D with at least two points, got shape {grid.shape}")
    return grid


def dichotomous_log_likelihoods(
    a: ArrayLike, b: ArrayLike, c: ArrayLike, u: ArrayLike, grid: NDArray[np.float64] = GRID
) -> NDArray[np.float64]:
    """Per 3PL item, log P(u | theta) on the grid: shape (items, len(grid)); u in {0, 1}."""
    slope, difficulty, guess, scores = _floats(a), _floats(b), _floats(c), np.asarray(u)
    lengths = {name: arr.shape for name, arr in (("a", slope), ("b", difficulty), ("c", guess), ("u", scores))}
    if any(len(shape) != 1 for shape in lengths.values()) or len(set(lengths.values())) != 1:
        raise ValueError(f"a, b, c and u must be 1-D and of equal length, got shapes {lengths}")
    if not np.all((scores == 0) | (scores == 1)):
        raise ValueError(f"dichotomous responses u must be 0 or 1, got {sorted(set(scores.tolist()))}")
    if not (np.all(np.isfinite(slope)) and np.all(slope > 0) and np.all(np.isfinite(difficulty))):
        raise ValueError("3PL parameters a must be finite and positive and b finite")
    if not np.all((guess >= 0) & (guess < 1)):
        raise ValueError("3PL guessing parameters c must lie in [0, 1)")
    correct = scores == 1
    # Each row is log P (u = 1) or log Q (u = 0): log Q = log(1 - c) + log sigmoid(-z) and
    # log P = logaddexp(log c, log(1 - c) + log sigmoid(z)); a log c of -inf on wrong answers selects log Q.
    sign = np.where(correct, 1.0, -1.0)
    z = (sign * slope)[:, None] * (np.asarray(grid)[None, :] - difficulty[:, None])
    with np.errstate(divide="ignore"):
        log_guess = np.where(correct, np.log(guess), -np.inf)
    return np.asarray(np.logaddexp(log_guess[:, None], np.log1p(-guess)[:, None] + _log_sigmoid(z)), np.float64)


def polytomous_log_likelihood(
    response: PolytomousResponse, grid: NDArray[np.float64] = GRID
) -> NDArray[np.float64]:
    """log P(score | theta) of a rated GPCM response on the grid, shape (len(grid),)."""
    return _gpcm_log_probs(np.asarray(grid, dtype=np.float64), response.a, np.asarray(response.steps))[
        :, response.score
    ]


def posterior(
    *,
    dichotomous: NDArray[np.float64] | None = None,
    polytomous: Sequence[NDArray[np.float64]] = (),
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
    grid: NDArray[np.float64] = GRID,
) -> Ability:
    """EAP from log-likelihood rows on the grid (those of dichotomous_log_likelihoods and
    polytomous_log_likelihood), so that a caller scoring the same item many times computes its row once.

    The rows are added in the order eap() adds them."""
    grid = _checked_grid(prior_mean, prior_sd, grid)
    log_post = -0.5 * ((grid - prior_mean) / prior_sd) ** 2
    if dichotomous is not None and dichotomous.shape[0]:
        log_post += dichotomous.sum(axis=0)
    for row in polytomous:
        log_post += row
    # Sums of logs would underflow as a product of probabilities; shift by the max before exp().
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    theta = float(weights @ grid)
    spread = grid - theta
    return Ability(theta=theta, se=math.sqrt(float(weights @ (spread * spread))))


def eap(
    *,
    a: ArrayLike = (),
    b: ArrayLike = (),
    c: ArrayLike = (),
    u: ArrayLike = (),
    polytomous: Sequence[PolytomousResponse] = (),
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
    grid: NDArray[np.float64] = GRID,
) -> Ability:
    """Expected a posteriori ability with a normal prior on a quadrature grid; se is the posterior SD.

    a, b, c, u describe the dichotomous (3PL) items, u in {0, 1}; `polytomous` the rated (GPCM) ones.
    """
    grid = _checked_grid(prior_mean, prior_sd, grid)
    return posterior(
        dichotomous=dichotomous_log_likelihoods(a, b, c, u, grid),
        polytomous=[polytomous_log_likelihood(response, grid) for response in polytomous],
        prior_mean=prior_mean,
        prior_sd=prior_sd,
        grid=grid,
    )


def select_randomesque(information: NDArray[np.float64], k: int, rng: np.random.Generator) -> int:
    """Index drawn uniformly among the k most informative entries (ties go to the lower index).

    k is clipped to [1, len(information)].
    """
    values = np.asarray(information, dtype=np.float64)
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(f"randomesque selection needs a non-empty 1-D array of information, got {values.shape}")
    if np.isnan(values).any():
        raise ValueError("item information contains NaN")
    top = min(max(k, 1), values.shape[0])
    # A stable sort of the negated values keeps equal information in index order.
    best = np.argsort(-values, kind="stable")[:top]
    return int(best[rng.integers(top)])
