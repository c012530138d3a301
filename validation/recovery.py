"""`python -m validation.recovery`: how well the calibration job's estimator recovers known parameters."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np
from numpy.typing import ArrayLike, NDArray

from toefl_core.calibration import C_PRIOR, LOCATION_PRIOR_SD, LOG_A_SD, Calibration, PretestData, calibrate
from toefl_core.irt import GRID, dichotomous_log_likelihoods, gpcm_probs, prob_3pl

SAMPLE_SIZES = (500, 1000, 2000)
ANCHOR_ITEMS = 40
PRETEST_3PL = 30
PRETEST_GPCM = 6
GPCM_STEPS = 4
# The calibration sample is abler and more spread than the reference population N(0, 1) that fixed the scale:
# the operational items must carry the scale over, not the assumption that the sample is N(0, 1).
SAMPLE_MEAN, SAMPLE_SD = 0.25, 1.1


@dataclass(frozen=True)
class Truth:
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    c: NDArray[np.float64]


@dataclass(frozen=True)
class Row:
    """Recovery of one parameter at one sample size: RMSE, bias, and how often the truth lies within 1.96 SE."""

    sample_size: int
    model: str
    parameter: str
    items: int
    rmse: float
    bias: float
    coverage: float


@dataclass(frozen=True)
class Recovery:
    rows: list[Row]
    # (true b, estimated b) of the 3PL pretest items at each sample size, for the plot.
    b_pairs: dict[int, list[tuple[float, float]]]
    calibrations: dict[int, Calibration]
    seed: int
    # Sample size -> RMSE of the 3PL b by the same estimator and priors given each simulee's true theta.
    known_theta_b_rmse: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Pooled:
    """Recovery of one parameter at one sample size over many seeds (each its own bank and simulees): the RMSE over
    every item of every seed, with a 95% interval from resampling whole seeds (the items of one seed share their
    simulees and population estimate, so they are not independent draws)."""

    sample_size: int
    model: str
    parameter: str
    seeds: int
    items: int
    rmse: float
    low: float
    high: float
    bias: float
    coverage: float
    seed_min: float
    seed_max: float


@dataclass(frozen=True)
class Bound:
    """The 3PL b RMSE that the estimator's priors allow at one sample size with the thetas known, to first order
    (the posterior mode as one Newton step from the truth: variance H^-1 I H^-1 and bias H^-1 grad log prior, with
    I the Fisher information of the responses and H = I + the prior's curvature), averaged over the generator's
    items; under three assumptions about the true c."""

    sample_size: int
    # c = 0.2 for every item, the mode of the c prior: the recovery study's generator.
    at_prior_mode: float
    # c drawn from the c prior Beta(5, 17) itself: items whose guessing varies as the prior says it may.
    from_prior: float
    # c known exactly (not estimated): what the b error would be without the c-b trade-off.
    c_known: float


A_MEDIAN, A_SD, A_RANGE = 1.2, 0.25, (0.5, 2.5)


def _bank(rng: np.random.Generator, count: int, guess: float) -> Truth:
    a = np.clip(rng.normal(A_MEDIAN, A_SD, count), *A_RANGE)
    return Truth(a=a, b=rng.normal(0.0, 1.0, count), c=np.full(count, guess))


def _draw_3pl(rng: np.random.Generator, theta: NDArray[np.float64], truth: Truth) -> NDArray[np.intp]:
    chance = prob_3pl(theta[:, None], truth.a[None, :], truth.b[None, :], truth.c[None, :])
    return (rng.random(chance.shape) < chance).astype(np.intp)


def _draw_gpcm(
    rng: np.random.Generator, theta: NDArray[np.float64], a: float, steps: NDArray[np.float64]
) -> NDArray[np.intp]:
    cumulative = gpcm_probs(theta, a, steps).cumsum(axis=1)
    drawn: NDArray[np.intp] = (rng.random(len(theta))[:, None] > cumulative).sum(axis=1).astype(np.intp)
    return drawn


def _row(size: int, model: str, name: str, true: ArrayLike, found: ArrayLike, se: ArrayLike) -> Row:
    error = np.asarray(found) - np.asarray(true)
    covered = np.abs(error) <= 1.96 * np.asarray(se)
    return Row(
        sample_size=size,
        model=model,
        parameter=name,
        items=int(error.size),
        rmse=float(np.sqrt(np.mean(error**2))),
        bias=float(np.mean(error)),
        coverage=float(np.mean(covered)),
    )


def recover_once(
    size: int, seed: int, *, known_thetas: bool = True, varied_c: bool = False
) -> tuple[list[Row], list[tuple[float, float]], Calibration, float]:
    """Simulate `size` simulees answering the anchor and every pretest item, calibrate, compare with the truth;
    last the 3PL b RMSE that the same estimator reaches when told the true abilities (NaN unless
    `known_thetas`: it calibrates on a grid of `size` points, the costliest part). With `varied_c` the pretest
    items' c are drawn from the c prior, Beta(5, 17), instead of all 0.2 (its mode)."""
    rng = np.random.default_rng([seed, size])
    anchor_truth = _bank(rng, ANCHOR_ITEMS, 0.2)
    pretest_truth = _bank(rng, PRETEST_3PL, 0.2)
    if varied_c:
        pretest_truth = Truth(a=pretest_truth.a, b=pretest_truth.b, c=rng.beta(*C_PRIOR, PRETEST_3PL))
    gpcm_a = np.clip(rng.normal(1.0, 0.2, PRETEST_GPCM), 0.5, 2.0)
    gpcm_steps = np.sort(rng.normal(0.0, 1.0, (PRETEST_GPCM, GPCM_STEPS)), axis=1)
    theta = rng.normal(SAMPLE_MEAN, SAMPLE_SD, size)
    anchor_scores = _draw_3pl(rng, theta, anchor_truth)
    anchor = np.zeros((size, len(GRID)))
    for j in range(ANCHOR_ITEMS):
        a, b, c = anchor_truth.a[j], anchor_truth.b[j], anchor_truth.c[j]
        anchor += dichotomous_log_likelihoods([a, a], [b, b], [c, c], [0, 1])[anchor_scores[:, j]]
    everyone = np.arange(size, dtype=np.intp)
    pretest_scores = _draw_3pl(rng, theta, pretest_truth)
    items = [PretestData(f"p{j}", "3PL", 1, everyone, pretest_scores[:, j]) for j in range(PRETEST_3PL)]
    items += [
        PretestData(f"g{j}", "GPCM", GPCM_STEPS, everyone, _draw_gpcm(rng, theta, float(gpcm_a[j]), gpcm_steps[j]))
        for j in range(PRETEST_GPCM)
    ]
    result = calibrate(anchor, items, min_responses=1, a_prior_median=float(np.median(anchor_truth.a)))
    dichotomous = [e for e in result.estimates if e.model == "3PL"]
    polytomous = [e for e in result.estimates if e.model == "GPCM"]
    rows = [
        _row(size, "3PL", "a", pretest_truth.a, [e.a for e in dichotomous], [e.se_a for e in dichotomous]),
        _row(size, "3PL", "b", pretest_truth.b, [e.b for e in dichotomous], [e.se_b for e in dichotomous]),
        _row(size, "3PL", "c", pretest_truth.c, [e.c for e in dichotomous], [e.se_c for e in dichotomous]),
        _row(size, "GPCM", "a", gpcm_a, [e.a for e in polytomous], [e.se_a for e in polytomous]),
        _row(
            size,
            "GPCM",
            "steps",
            gpcm_steps.ravel(),
            [s for e in polytomous for s in e.steps],
            [s for e in polytomous for s in e.se_steps],
        ),
    ]
    pairs = [(float(t), e.b) for t, e in zip(pretest_truth.b, dichotomous, strict=True)]
    bound = _known_theta_b_rmse(theta, items[:PRETEST_3PL], pretest_truth) if known_thetas else math.nan
    return rows, pairs, result, bound


def _known_theta_b_rmse(theta: NDArray[np.float64], items: Sequence[PretestData], truth: Truth) -> float:
    """The 3PL b RMSE of the same estimator and priors told each simulee's true theta: its quadrature grid is the
    simulees' own thetas and each simulee's likelihood is 1 at theirs, 0 elsewhere. What remains is the error of
    the responses themselves (and the priors), which no better integration over ability could remove."""
    grid = np.asarray(theta, dtype=np.float64)
    known = np.full((len(theta), len(theta)), -np.inf)
    np.fill_diagonal(known, 0.0)
    result = calibrate(known, items, min_responses=1, a_prior_median=float(np.median(truth.a)), grid=grid)
    return float(np.sqrt(np.mean((np.array([e.b for e in result.estimates]) - truth.b) ** 2)))


def recover(
    sizes: Sequence[int] = SAMPLE_SIZES, seed: int = 1, *, known_thetas: bool = True, varied_c: bool = False
) -> Recovery:
    rows: list[Row] = []
    pairs: dict[int, list[tuple[float, float]]] = {}
    calibrations: dict[int, Calibration] = {}
    known: dict[int, float] = {}
    for size in sizes:
        found, pairs[size], calibrations[size], known[size] = recover_once(
            size, seed, known_thetas=known_thetas, varied_c=varied_c
        )
        rows.extend(found)
    return Recovery(rows=rows, b_pairs=pairs, calibrations=calibrations, seed=seed, known_theta_b_rmse=known)


def pool(recoveries: Sequence[Recovery], *, resamples: int = 2000) -> list[Pooled]:
    """Every (sample size, model, parameter) pooled over the seeds of `recoveries`, with its seed-bootstrap 95%
    interval. Each seed's RMSE, bias and coverage over its items are all that pooling needs."""
    keys = list(dict.fromkeys((r.sample_size, r.model, r.parameter) for rec in recoveries for r in rec.rows))
    rng = np.random.default_rng(0)
    drawn = rng.integers(0, len(recoveries), (resamples, len(recoveries)))
    pooled = []
    for key in keys:
        rows = [next(r for r in rec.rows if (r.sample_size, r.model, r.parameter) == key) for rec in recoveries]
        items = np.array([r.items for r in rows], dtype=np.float64)
        squares = items * np.array([r.rmse for r in rows]) ** 2
        rmse = float(np.sqrt(squares.sum() / items.sum()))
        resampled = np.sqrt(squares[drawn].sum(axis=1) / items[drawn].sum(axis=1))
        low, high = np.percentile(resampled, [2.5, 97.5])
        pooled.append(
            Pooled(
                sample_size=key[0],
                model=key[1],
                parameter=key[2],
                seeds=len(rows),
                items=int(items.sum()),
                rmse=rmse,
                low=float(low),
                high=float(high),
                bias=float((items * np.array([r.bias for r in rows])).sum() / items.sum()),
                coverage=float((items * np.array([r.coverage for r in rows])).sum() / items.sum()),
                seed_min=min(r.rmse for r in rows),
                seed_max=max(r.rmse for r in rows),
            )
        )
    return pooled


B_RANGES = ((-math.inf, -1.5), (-1.5, -0.5), (-0.5, 0.5), (0.5, 1.5), (1.5, math.inf))


def b_by_difficulty(recoveries: Sequence[Recovery], size: int) -> list[tuple[str, int, float, float]]:
    """(range of true b, items, RMSE, bias) of the 3PL b at `size`, pooled over `recoveries`: where on the scale
    the error lies (the simulees' abilities are centred at 0.25)."""
    pairs = np.array([pair for recovery in recoveries for pair in recovery.b_pairs[size]])
    rows = []
    for low, high in B_RANGES:
        inside = pairs[(pairs[:, 0] >= low) & (pairs[:, 0] < high)]
        if len(inside):
            error = inside[:, 1] - inside[:, 0]
            label = (
                f"b < {high:g}"
                if low == -math.inf
                else f"b >= {low:g}"
                if high == math.inf
                else f"{low:g} to {high:g}"
            )
            rows.append((label, len(inside), float(np.sqrt(np.mean(error**2))), float(np.mean(error))))
    return rows


def _fisher_3pl(
    a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64], size: int
) -> NDArray[np.float64]:
    """Fisher information about (a, b, c) of `size` responses from the calibration sample, one 3x3 per item."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(61)
    theta = SAMPLE_MEAN + SAMPLE_SD * nodes
    z = a[:, None] * (theta[None, :] - b[:, None])
    above, below = 1.0 / (1.0 + np.exp(-z)), 1.0 / (1.0 + np.exp(z))
    right = c[:, None] + (1.0 - c[:, None]) * above
    wrong = (1.0 - c[:, None]) * below
    slope = (1.0 - c[:, None]) * above * below
    gradient = np.stack([slope * (theta - b[:, None]), -slope * a[:, None], below], axis=-1)
    weight = size * (weights / weights.sum())[None, :] / (right * wrong)
    return np.asarray(np.einsum("kq,kqi,kqj->kij", weight, gradient, gradient), dtype=np.float64)


def _map_b_errors(
    a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64], size: int, *, c_known: bool = False
) -> NDArray[np.float64]:
    """First-order mean squared error of each item's posterior-mode b under the estimator's priors (the slope prior
    centred at the generator's median a, as the operational items' median centres it)."""
    information = _fisher_3pl(a, b, c, size)
    centre = math.log(A_MEDIAN)
    curvature = np.zeros_like(information)
    curvature[:, 0, 0] = (1.0 - (np.log(a) - centre)) / (LOG_A_SD**2 * a**2)
    curvature[:, 1, 1] = 1.0 / LOCATION_PRIOR_SD**2
    curvature[:, 2, 2] = (C_PRIOR[0] - 1) / c**2 + (C_PRIOR[1] - 1) / (1 - c) ** 2
    pull = np.stack(
        [
            -(np.log(a) - centre) / (LOG_A_SD**2 * a),
            -b / LOCATION_PRIOR_SD**2,
            (C_PRIOR[0] - 1) / c - (C_PRIOR[1] - 1) / (1 - c),
        ],
        axis=-1,
    )
    kept = slice(0, 2 if c_known else 3)
    inverse = np.linalg.inv(information[:, kept, kept] + curvature[:, kept, kept])
    variance = np.einsum("kij,kjl,kml->kim", inverse, information[:, kept, kept], inverse)[:, 1, 1]
    bias = np.einsum("kij,kj->ki", inverse, pull[:, kept])[:, 1]
    return np.asarray(variance + bias**2, dtype=np.float64)


def b_error_bound(size: int, *, items: int = 20000, seed: int = 0) -> Bound:
    """The first-order 3PL b RMSE at `size` responses with the thetas known, over `items` items drawn like the
    recovery study's (b ~ N(0, 1), a ~ N(1.2, 0.25^2) clipped), for c at the prior's mode, c from the prior, and c
    known."""
    rng = np.random.default_rng(seed)
    truth = _bank(rng, items, 0.2)
    varied = rng.beta(*C_PRIOR, items)

    def rms(errors: NDArray[np.float64]) -> float:
        return float(np.sqrt(errors.mean()))

    return Bound(
        sample_size=size,
        at_prior_mode=rms(_map_b_errors(truth.a, truth.b, truth.c, size)),
        from_prior=rms(_map_b_errors(truth.a, truth.b, varied, size)),
        c_known=rms(_map_b_errors(truth.a, truth.b, truth.c, size, c_known=True)),
    )


def write_pooled(pooled: Sequence[Pooled], bounds: Sequence[Bound], out: TextIO, *, title: bool = True) -> None:
    seeds = pooled[0].seeds if pooled else 0
    if title:
        out.write(
            f"Pooled over seeds 1-{seeds} (each its own bank and simulees); 95% interval by resampling seeds:\n\n"
        )
    out.write(
        "| responses | model | parameter | items | RMSE | 95% interval | per seed | bias | within 1.96 SE |\n"
        "|---:|---|---|---:|---:|---|---|---:|---:|\n"
    )
    for p in pooled:
        out.write(
            f"| {p.sample_size} | {p.model} | {p.parameter} | {p.items} | {p.rmse:.3f} | {p.low:.3f}-{p.high:.3f} "
            f"| {p.seed_min:.3f}-{p.seed_max:.3f} | {p.bias:+.3f} | {100 * p.coverage:.0f}% |\n"
        )
    if not bounds:
        return
    out.write(
        "\n3PL b RMSE to first order with the thetas known (estimator's priors, generator's a and b):\n\n"
        "| responses | c = 0.2, the prior's mode | c ~ Beta(5, 17), the prior | c known |\n|---:|---:|---:|---:|\n"
    )
    for bound in bounds:
        out.write(
            f"| {bound.sample_size} | {bound.at_prior_mode:.3f} | {bound.from_prior:.3f} | {bound.c_known:.3f} |\n"
        )


def write_table(recovery: Recovery, out: TextIO) -> None:
    out.write(
        f"Calibration parameter recovery (seed {recovery.seed}): {ANCHOR_ITEMS} operational 3PL items held fixed, "
        f"{PRETEST_3PL} pretest 3PL items (c = 0.2) and {PRETEST_GPCM} GPCM items ({GPCM_STEPS} steps), "
        f"simulees theta ~ N({SAMPLE_MEAN}, {SAMPLE_SD}^2), every simulee answering every item.\n\n"
    )
    out.write("| responses | model | parameter | items | RMSE | bias | within 1.96 SE |\n")
    out.write("|---:|---|---|---:|---:|---:|---:|\n")
    for row in recovery.rows:
        out.write(
            f"| {row.sample_size} | {row.model} | {row.parameter} | {row.items} | {row.rmse:.3f} | "
            f"{row.bias:+.3f} | {100 * row.coverage:.0f}% |\n"
        )
    out.write("\nPopulation estimated (mean, SD) | cycles | 3PL b RMSE with the true thetas known:\n")
    for size, result in recovery.calibrations.items():
        out.write(
            f"- {size}: ({result.population_mean:.3f}, {result.population_sd:.3f}) | {result.cycles} "
            f"{'converged' if result.converged else 'NOT converged'} | {recovery.known_theta_b_rmse[size]:.3f}\n"
        )


def write_seeds(recoveries: Sequence[Recovery], out: TextIO) -> None:
    """One line per seed and sample size: the 3PL b RMSE, the same with the thetas known, and the RMS of the
    reported standard errors of b (what the estimates themselves say their error is)."""
    out.write("| seed | responses | 3PL b RMSE | with thetas known | RMS of SE(b) |\n|---:|---:|---:|---:|---:|\n")
    for recovery in recoveries:
        for size, result in recovery.calibrations.items():
            found = next(
                r for r in recovery.rows if r.sample_size == size and r.model == "3PL" and r.parameter == "b"
            )
            se = [e.se_b for e in result.estimates if e.model == "3PL"]
            out.write(
                f"| {recovery.seed} | {size} | {found.rmse:.3f} | {recovery.known_theta_b_rmse[size]:.3f} | "
                f"{float(np.sqrt(np.mean(np.square(se)))):.3f} |\n"
            )


def b_plot_svg(pairs: Sequence[tuple[float, float]], *, title: str) -> str:
    """A scatter plot of true against estimated b, as a small standalone SVG (no plotting library needed)."""
    size, margin, span = 360, 40, 4.0

    def place(value: float) -> float:
        return margin + (min(max(value, -span), span) + span) / (2 * span) * (size - 2 * margin)

    points = "".join(
        f'<circle cx="{place(t):.1f}" cy="{size - place(e):.1f}" r="3" fill="#1f77b4"/>' for t, e in pairs
    )
    ticks = "".join(
        f'<text x="{place(v):.1f}" y="{size - margin + 14}" font-size="10" text-anchor="middle">{v:g}</text>'
        f'<text x="{margin - 6}" y="{size - place(v) + 3:.1f}" font-size="10" text-anchor="end">{v:g}</text>'
        for v in (-4, -2, 0, 2, 4)
    )
    low, high = place(-span), place(span)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" font-family="sans-serif">'
        f'<rect width="{size}" height="{size}" fill="white"/>'
        f'<line x1="{low}" y1="{size - low}" x2="{high}" y2="{size - high}" stroke="#999" stroke-dasharray="4"/>'
        f'<rect x="{margin}" y="{margin}" width="{size - 2 * margin}" height="{size - 2 * margin}" fill="none" '
        f'stroke="black"/>{ticks}{points}'
        f'<text x="{size / 2}" y="20" font-size="12" text-anchor="middle">{title}</text>'
        f'<text x="{size / 2}" y="{size - 6}" font-size="11" text-anchor="middle">true b</text>'
        f'<text x="12" y="{size / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {size / 2})">estimated b</text></svg>\n'
    )


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation.recovery", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SAMPLE_SIZES))
    parser.add_argument("--svg", help="write the plot of true vs estimated b (largest sample) to this file")
    parser.add_argument(
        "--more-seeds", type=int, nargs="*", default=[], help="also these seeds, summarised one line each"
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=0,
        metavar="N",
        help="also pool seeds 1..N (without the known-theta runs) with 95%% intervals, and the first-order bound",
    )
    parser.add_argument(
        "--pool-varied-c",
        type=int,
        default=0,
        metavar="N",
        help="also pool seeds 1..N with the pretest items' c drawn from the c prior instead of all 0.2",
    )
    args = parser.parse_args(argv)
    recovery = recover(args.sizes, args.seed)
    write_table(recovery, out)
    extra = {seed: recover(args.sizes, seed) for seed in args.more_seeds}
    if args.more_seeds:
        out.write("\n3PL b per seed:\n\n")
        write_seeds([recovery, *extra.values()], out)
    if args.pool:
        known = {args.seed: recovery, **extra}
        pooled = [known.get(s) or recover(args.sizes, s, known_thetas=False) for s in range(1, args.pool + 1)]
        out.write("\n")
        write_pooled(pool(pooled), [b_error_bound(size) for size in args.sizes], out)
        for size in args.sizes:
            out.write(f"\n3PL b at {size} responses by true b, seeds 1-{args.pool}:\n\n")
            out.write("| true b | items | RMSE | bias |\n|---|---:|---:|---:|\n")
            for label, count, rmse, bias in b_by_difficulty(pooled, size):
                out.write(f"| {label} | {count} | {rmse:.3f} | {bias:+.3f} |\n")
    if args.pool_varied_c:
        varied = [
            recover(args.sizes, s, known_thetas=False, varied_c=True) for s in range(1, args.pool_varied_c + 1)
        ]
        out.write("\nThe same with the pretest items' c drawn from Beta(5, 17):\n\n")
        write_pooled(pool(varied), [], out, title=False)
    if args.svg:
        largest = max(recovery.b_pairs)
        with open(args.svg, "w", encoding="utf-8") as handle:
            handle.write(b_plot_svg(recovery.b_pairs[largest], title=f"3PL pretest b, {largest} responses"))
    worst = max(
        (row.rmse for row in recovery.rows if row.model == "3PL" and row.parameter == "b"), default=math.nan
    )
    out.write(f"\nlargest 3PL b RMSE: {worst:.3f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
