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

from toefl_core.calibration import Calibration, PretestData, calibrate
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


def _bank(rng: np.random.Generator, count: int, guess: float) -> Truth:
    a = np.clip(rng.normal(1.2, 0.25, count), 0.5, 2.5)
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
    size: int, seed: int, *, known_thetas: bool = True
) -> tuple[list[Row], list[tuple[float, float]], Calibration, float]:
    """Simulate `size` simulees answering the anchor and every pretest item, calibrate, compare with the truth;
    last the 3PL b RMSE that the same estimator reaches when told the true abilities (NaN unless
    `known_thetas`: it calibrates on a grid of `size` points, the costliest part)."""
    rng = np.random.default_rng([seed, size])
    anchor_truth = _bank(rng, ANCHOR_ITEMS, 0.2)
    pretest_truth = _bank(rng, PRETEST_3PL, 0.2)
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


def recover(sizes: Sequence[int] = SAMPLE_SIZES, seed: int = 1, *, known_thetas: bool = True) -> Recovery:
    rows: list[Row] = []
    pairs: dict[int, list[tuple[float, float]]] = {}
    calibrations: dict[int, Calibration] = {}
    known: dict[int, float] = {}
    for size in sizes:
        found, pairs[size], calibrations[size], known[size] = recover_once(size, seed, known_thetas=known_thetas)
        rows.extend(found)
    return Recovery(rows=rows, b_pairs=pairs, calibrations=calibrations, seed=seed, known_theta_b_rmse=known)


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
    args = parser.parse_args(argv)
    recovery = recover(args.sizes, args.seed)
    write_table(recovery, out)
    if args.more_seeds:
        out.write("\n3PL b per seed:\n\n")
        write_seeds([recovery, *(recover(args.sizes, seed) for seed in args.more_seeds)], out)
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
