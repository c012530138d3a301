"""The realistic conditions: raters resolved by the platform's rating rules, a testlet effect per passage, and a
bank re-estimated by the calibration job's estimator, each changing the scores the way it should."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from toefl.item.v1 import item_pb2

from session_service.config import DEFAULT_SECOND_RATING_SHARE
from validation.__main__ import main, write_report
from validation.conditions import (
    ANCHOR_ITEMS,
    IDEAL,
    Condition,
    RaterPanel,
    RatingTally,
    calibrate_bank,
    realistic_conditions,
)
from validation.simulation import ADAPTIVE, LINEAR, Simulee, active_bank, simulate

SIMULEES = 40


def test_raters_are_resolved_by_the_rating_rules() -> None:
    tally = RatingTally()
    panel = RaterPanel(np.random.default_rng(1), tally)
    rng = np.random.default_rng(2)
    finals = [panel.final_score(f"r{n}", n % 6, 5, rng) for n in range(3000)]
    assert tally.rated == 3000 and all(0 <= f <= 5 for f in finals)
    # The platform's hash picks the double-rated share; only a double-rated response can go to an adjudicator.
    assert tally.double_rated / tally.rated == pytest.approx(DEFAULT_SECOND_RATING_SHARE, abs=0.03)
    assert 0 < tally.adjudicated < tally.double_rated == len(tally.pairs)
    exact, adjacent, kappa = tally.agreement()
    assert 0.3 < exact < adjacent <= 1 and kappa is not None and kappa > 0.6
    # Raters err around the true score: finals stay near it on average.
    assert np.mean(np.abs(np.array(finals) - np.arange(3000) % 6)) < 0.6


def test_a_passage_shares_one_effect_and_a_lone_item_has_none() -> None:
    bank = active_bank()
    passage = [item for item in bank if item.passage_id][:6]
    lone = next(item for item in bank if not item.passage_id and item.irt.model == item_pb2.IRT_MODEL_3PL)
    simulee = Simulee(0.0, np.random.default_rng(1), testlet_sd=0.5, effects_rng=np.random.default_rng(2))
    simulee.take([*passage, lone])
    assert set(simulee.passage_effects) == {item.passage_id for item in passage}
    assert all(effect != 0 for effect in simulee.passage_effects.values())


@pytest.fixture(scope="module")
def calibrated() -> tuple[list[item_pb2.Item], dict[str, item_pb2.IrtParameters]]:
    listening = [item for item in active_bank() if item.section == item_pb2.SECTION_LISTENING][:60]
    result = calibrate_bank(listening, responses=400, seed=1, sections=(item_pb2.SECTION_LISTENING,))
    return listening, result.parameters


def test_the_calibration_job_re_estimates_every_item(
    calibrated: tuple[list[item_pb2.Item], dict[str, item_pb2.IrtParameters]],
) -> None:
    bank, parameters = calibrated
    assert set(parameters) == {item.item_id for item in bank} and len(bank) > ANCHOR_ITEMS
    errors = np.array([parameters[item.item_id].b - item.irt.b for item in bank])
    # Estimates, not the generating values copied, and near them (400 responses each).
    assert np.all(errors != 0) and np.sqrt(np.mean(errors**2)) < 0.5
    assert all(parameters[item.item_id].max_score == item.irt.max_score for item in bank)


def test_scoring_reads_the_estimates_while_simulees_answer_by_the_truth() -> None:
    # Every item estimated half a logit harder than it is: right answers look abler, so estimates come out high.
    harder = {}
    for item in active_bank():
        irt = item_pb2.IrtParameters()
        irt.CopyFrom(item.irt)
        irt.b += 0.5
        irt.steps[:] = [step + 0.5 for step in irt.steps]
        harder[item.item_id] = irt
    shifted = simulate(SIMULEES, seed=3, scoring_parameters=harder)
    ideal = simulate(SIMULEES, seed=3)
    for section in ("reading", "listening"):
        assert shifted.row(section, ADAPTIVE).bias > ideal.row(section, ADAPTIVE).bias + 0.3


def test_each_condition_changes_only_what_it_touches() -> None:
    ideal = simulate(SIMULEES, seed=5)
    raters, testlet = (
        simulate(SIMULEES, seed=5, condition=c) for c in realistic_conditions() if c.calibration_sample is None
    )
    assert raters.ratings is not None and raters.ratings.rated > 0 and ideal.ratings is None
    for section, design in (("reading", ADAPTIVE), ("listening", ADAPTIVE), ("reading", LINEAR)):
        assert raters.row(section, design) == ideal.row(section, design), "raters rate no Reading or Listening"
        assert testlet.row(section, design) != ideal.row(section, design)
    for section in ("writing", "speaking"):
        assert raters.row(section, LINEAR) != ideal.row(section, LINEAR)
    assert testlet.row("speaking", LINEAR) == ideal.row("speaking", LINEAR), "no passages in Speaking"
    out = io.StringIO()
    write_report(ideal, out, [raters, testlet])
    text = out.getvalue()
    assert "Realistic conditions" in text and "adjudicated" in text and "variance 0.25" in text


def test_conditions_describe_themselves() -> None:
    assert "generating parameters" in IDEAL.describe()
    assert "1,000 simulated responses" in Condition("c", calibration_sample=1000).describe()
    combined = realistic_conditions()[-1]
    assert combined.name == "combined" and combined.raters and combined.testlet_variance > 0
    text = combined.describe()
    assert text.startswith("all at once") and "1,000 simulated responses" in text
    assert "simulated raters" in text and "person-by-passage" in text


def test_errors_together_change_what_each_touches_and_skip_the_calibration_goal() -> None:
    ideal = simulate(SIMULEES, seed=5)
    raters = simulate(SIMULEES, seed=5, condition=Condition("raters", raters=True))
    both = simulate(SIMULEES, seed=5, condition=Condition("combined", raters=True, testlet_variance=0.25))
    assert both.ratings is not None and both.ratings.rated > 0
    assert both.row("reading", ADAPTIVE) != ideal.row("reading", ADAPTIVE), "the testlet effect is there"
    # Passage effects and rater noise share a stream: the ratings differ from the raters' alone, but are ratings.
    assert both.row("writing", LINEAR) != ideal.row("writing", LINEAR)
    assert raters.ratings is not None and both.ratings.rated == raters.ratings.rated
    out = io.StringIO()
    write_report(ideal, out, [raters, both])
    assert "combined: all at once" in out.getvalue() and "Goal, reading under calibration" not in out.getvalue()


def test_cli_writes_the_markdown_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "VALIDATION.md"
    assert main(["--simulees", "5", "--conditions", "raters", "testlet", "--markdown", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Psychometric validation") and "| raters | speaking | linear |" in text
    assert "What is not simulated" in text and "--conditions raters testlet" in text
    assert "raters" in capsys.readouterr().out
