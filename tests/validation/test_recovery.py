"""Parameter recovery of the calibration: simulees from known 3PL and GPCM parameters (toefl_core.irt), calibrated
with the operational items fixed, land near the truth with honest standard errors and on the operational scale."""

from __future__ import annotations

import io

import numpy as np
import pytest

from toefl_core.calibration import PretestData, calibrate
from toefl_core.irt import info_3pl
from validation.recovery import (
    SAMPLE_MEAN,
    SAMPLE_SD,
    Recovery,
    Row,
    _fisher_3pl,
    b_by_difficulty,
    b_error_bound,
    b_plot_svg,
    pool,
    recover,
    recover_once,
    write_pooled,
    write_table,
)

SIZE = 1000


@pytest.fixture(scope="module")
def recovery() -> Recovery:
    # The bound with the thetas known costs more than the calibration itself: test_known_thetas_bound has it.
    return recover((SIZE,), seed=3, known_thetas=False)


def row(recovery: Recovery, model: str, parameter: str) -> Row:
    return next(r for r in recovery.rows if r.model == model and r.parameter == parameter)


# Bounds at 1,000 responses per item, above what seeds 1-3 gave (RMSE b 0.14-0.21, a 0.09-0.18, c 0.03-0.04,
# GPCM a 0.04-0.07, steps 0.12-0.14): loose enough for any seed, tight enough that a scale shift (every b moved)
# or a broken estimator fails.
@pytest.mark.parametrize(
    ("model", "parameter", "rmse", "bias"),
    [
        ("3PL", "a", 0.30, 0.15),
        ("3PL", "b", 0.30, 0.10),
        ("3PL", "c", 0.06, 0.03),
        ("GPCM", "a", 0.15, 0.10),
        ("GPCM", "steps", 0.25, 0.10),
    ],
)
def test_parameters_are_recovered(
    recovery: Recovery, model: str, parameter: str, rmse: float, bias: float
) -> None:
    found = row(recovery, model, parameter)
    assert found.rmse <= rmse and abs(found.bias) <= bias, found


def test_standard_errors_are_honest(recovery: Recovery) -> None:
    # About 95% of estimates lie within 1.96 SE of the truth if the SEs are right; overconfident ones fail.
    for parameter in ("a", "b"):
        assert row(recovery, "3PL", parameter).coverage >= 0.8
    assert row(recovery, "GPCM", "steps").coverage >= 0.75


def test_the_sample_lands_on_the_operational_scale(recovery: Recovery) -> None:
    result = recovery.calibrations[SIZE]
    assert result.converged
    assert abs(result.population_mean - SAMPLE_MEAN) < 0.15 and abs(result.population_sd - SAMPLE_SD) < 0.15


def test_too_few_responses_are_reported_not_estimated() -> None:
    anchor = np.zeros((40, 61))
    scores = np.array([0, 1] * 20, dtype=np.intp)
    items = [PretestData("small", "3PL", 1, np.arange(40, dtype=np.intp), scores)]
    result = calibrate(anchor, items, min_responses=50)
    assert result.estimates == [] and result.too_few == {"small": 40}


def test_the_table_and_the_plot(recovery: Recovery) -> None:
    out = io.StringIO()
    write_table(recovery, out)
    assert "| 1000 | 3PL | b |" in out.getvalue() and "true thetas known" in out.getvalue()
    svg = b_plot_svg(recovery.b_pairs[SIZE], title="b")
    assert svg.startswith("<svg") and svg.count("<circle") == len(recovery.b_pairs[SIZE])


def test_known_thetas_bound() -> None:
    # Told the true abilities, the same estimator does not do much worse than integrating over them.
    rows, _, _, bound = recover_once(300, seed=3)
    found = next(r for r in rows if r.model == "3PL" and r.parameter == "b")
    assert 0 < bound < found.rmse + 0.1


def _seed(seed: int, rmse: float, items: int) -> Recovery:
    row = Row(sample_size=1000, model="3PL", parameter="b", items=items, rmse=rmse, bias=0.1, coverage=0.9)
    return Recovery(rows=[row], b_pairs={}, calibrations={}, seed=seed)


def test_pooling_weighs_every_item_and_resamples_seeds() -> None:
    pooled = pool([_seed(1, 0.1, 30), _seed(2, 0.2, 10), _seed(3, 0.3, 20)])
    (found,) = pooled
    assert found.items == 60 and found.seeds == 3
    # The RMSE over the 60 items, not the mean of the three seeds' RMSEs (0.2).
    assert found.rmse == pytest.approx(np.sqrt((30 * 0.01 + 10 * 0.04 + 20 * 0.09) / 60))
    # Resampled seeds never leave the range of the seeds themselves.
    assert found.low < found.rmse < found.high and found.low >= 0.1 - 1e-9 and found.high <= 0.3 + 1e-9
    assert (found.seed_min, found.seed_max) == (0.1, 0.3) and found.bias == pytest.approx(0.1)
    out = io.StringIO()
    write_pooled(pooled, [b_error_bound(1000, items=200)], out)
    assert "| 1000 | 3PL | b | 60 | 0.204 |" in out.getvalue()


def test_b_errors_by_difficulty_cover_every_item() -> None:
    seed = Recovery(
        rows=[], b_pairs={1000: [(-2.0, -1.0), (0.0, 0.1), (0.2, 0.1), (3.0, 3.0)]}, calibrations={}, seed=1
    )
    rows = b_by_difficulty([seed, seed], 1000)
    assert [(label, count) for label, count, _, _ in rows] == [
        ("b < -1.5", 2),
        ("-0.5 to 0.5", 4),
        ("b >= 1.5", 2),
    ]
    assert rows[0][2:] == pytest.approx((1.0, 1.0)) and rows[1][2:] == pytest.approx((0.1, 0.0))


def test_the_fisher_information_about_b_is_the_information_about_theta() -> None:
    # P depends on theta - b only, so the information about b of one response at theta is the 3PL's information
    # about theta (toefl_core.irt, checked against independent implementations), averaged over the sample.
    a, b, c = np.array([0.7, 1.2, 2.0]), np.array([-1.5, 0.3, 1.8]), np.array([0.0, 0.2, 0.25])
    theta = np.linspace(SAMPLE_MEAN - 8 * SAMPLE_SD, SAMPLE_MEAN + 8 * SAMPLE_SD, 4001)
    density = np.exp(-0.5 * ((theta - SAMPLE_MEAN) / SAMPLE_SD) ** 2)
    expected = [
        1000 * float((info_3pl(theta, a[i], b[i], c[i]) * density).sum() / density.sum()) for i in range(3)
    ]
    found = _fisher_3pl(a, b, c, 1000)
    assert found[:, 1, 1] == pytest.approx(expected, rel=1e-6)
    assert np.allclose(found, found.transpose(0, 2, 1))


def test_the_bound_orders_the_sources_of_b_error() -> None:
    at_1000, at_4000 = b_error_bound(1000, items=2000), b_error_bound(4000, items=2000)
    # Estimating c costs b accuracy, the more so the further c strays from the prior's mode; more responses help
    # about as 1/sqrt(n) (less, where the priors' pull still counts).
    assert at_1000.c_known < at_1000.at_prior_mode < at_1000.from_prior
    assert 0.45 < at_4000.at_prior_mode / at_1000.at_prior_mode < 0.75


def test_varied_guessing_changes_only_c() -> None:
    fixed, fixed_pairs, _, _ = recover_once(300, seed=4, known_thetas=False)
    varied, varied_pairs, _, _ = recover_once(300, seed=4, known_thetas=False, varied_c=True)
    # The same a and b; c drawn from the prior (SD 0.09) strays from the estimates more than c = 0.2 at its mode.
    assert [t for t, _ in fixed_pairs] == [t for t, _ in varied_pairs]
    c_fixed, c_varied = (next(r for r in rows if r.parameter == "c") for rows in (fixed, varied))
    assert c_varied.rmse > 1.5 * c_fixed.rmse
