"""The simulation runs the real assembly, routing and scoring code and recovers ability within loose bounds."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from toefl.item.v1 import item_pb2

from toefl_core.scoring import score_answer
from validation.__main__ import main, write_report
from validation.simulation import ADAPTIVE, LINEAR, Report, Simulee, active_bank, simulate

SIMULEES = 60


@pytest.fixture(scope="module")
def report() -> Report:
    return simulate(SIMULEES, seed=7)


def test_statistics_are_finite_and_complete(report: Report) -> None:
    assert [(row.section, row.design) for row in report.rows] == [
        ("reading", ADAPTIVE),
        ("reading", LINEAR),
        ("listening", ADAPTIVE),
        ("listening", LINEAR),
        ("writing", LINEAR),
        ("speaking", LINEAR),
    ]
    for row in report.rows:
        values = (row.rmse, row.bias, row.correlation, row.mean_se, row.exact_band, row.within_half_band)
        assert all(math.isfinite(value) for value in values), row
        assert row.simulees == SIMULEES and row.mean_items > 5
        assert 0 <= row.exact_band <= row.within_half_band <= 1


def test_estimates_recover_the_true_ability(report: Report) -> None:
    for section in ("reading", "listening"):
        adaptive = report.row(section, ADAPTIVE)
        assert adaptive.rmse < 0.8 and adaptive.correlation > 0.7 and abs(adaptive.bias) < 0.3, adaptive
        assert adaptive.upper_share is not None and 0.2 < adaptive.upper_share < 0.8, "both modules are used"
        assert report.row(section, LINEAR).upper_share is None
    for section in ("writing", "speaking"):
        assert report.row(section, LINEAR).rmse < 0.8


def test_same_seed_same_report(report: Report) -> None:
    assert simulate(SIMULEES, seed=7) == report
    assert simulate(SIMULEES, seed=8) != report


def test_simulees_answer_by_their_ability() -> None:
    items = [item for item in active_bank() if item.task_type == item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE][:40]

    def raw_score(theta: float) -> int:
        answers = Simulee(theta, np.random.default_rng(1)).take(items)
        return sum(score_answer(item, answers[item.item_id]) or 0 for item in items)

    assert raw_score(3.0) > 30 > 20 > raw_score(-3.0)


def test_report_table_names_every_section_and_the_goal(report: Report) -> None:
    out = io.StringIO()
    write_report(report, out)
    text = out.getvalue()
    for section in ("reading", "listening", "writing", "speaking"):
        assert section in text
    assert "Goal, reading" in text and "Goal, listening" in text and f"{SIMULEES} simulees" in text


def test_cli_runs_and_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--simulees", "5", "--seed", "3", "--conditions"]) == 0
    assert "RMSE" in capsys.readouterr().out
    for argv in (["--simulees", "1"], ["--simulees", "many"], ["--seed", "-1"], ["--unknown"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "usage:" in capsys.readouterr().err


def test_adaptive_is_judged_by_a_paired_interval_with_lengths_beside(report: Report) -> None:
    assert [c.section for c in report.comparisons] == ["reading", "listening"]
    for comparison in report.comparisons:
        assert comparison.ci_low <= comparison.mse_difference <= comparison.ci_high
        assert 0 <= comparison.unequal_length_share <= 1
        adaptive, linear = report.row(comparison.section, ADAPTIVE), report.row(comparison.section, LINEAR)
        # Paired: the mean gain is the difference of the two designs' mean squared errors.
        assert comparison.mse_difference == pytest.approx(linear.rmse**2 - adaptive.rmse**2, abs=1e-9)
        assert comparison.length_difference == pytest.approx(adaptive.mean_items - linear.mean_items, abs=1e-9)
        expected = (
            "adaptive better"
            if comparison.ci_low > 0
            else ("linear better" if comparison.ci_high < 0 else "no difference")
        )
        assert comparison.verdict.startswith(expected)
    out = io.StringIO()
    write_report(report, out)
    assert "Paired comparison" in out.getvalue() and "equal length" not in out.getvalue()
