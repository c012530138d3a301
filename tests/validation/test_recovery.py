"""Parameter recovery of the calibration: simulees from known 3PL and GPCM parameters (toefl_core.irt), calibrated
with the operational items fixed, land near the truth with honest standard errors and on the operational scale."""

from __future__ import annotations

import io

import numpy as np
import pytest

from toefl_core.calibration import PretestData, calibrate
from validation.recovery import (
    SAMPLE_MEAN,
    SAMPLE_SD,
    Recovery,
    Row,
    b_plot_svg,
    recover,
    recover_once,
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
