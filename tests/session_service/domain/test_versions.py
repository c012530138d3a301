"""When a recomputed score is a new version: a changed figure is, a last-bit float difference is not."""

from __future__ import annotations

import dataclasses

import pytest

from session_service.domain.scores import (
    FIGURE_TOLERANCE,
    ScoreVersionRecord,
    SectionFigures,
    TotalFigures,
    differs,
)

READING = SectionFigures(
    section="SECTION_READING",
    status="SCORE_STATUS_FINAL",
    theta=0.4123456789012345,
    standard_error=0.3012345678901234,
    band="4.5",
    cefr="B2",
    band_low="4.0",
    band_high="5.0",
    items_used=50,
    items_awaiting_rating=0,
    task_types_json="[]",
    parameters_json='{"itm-1":1}',
)
STORED = ScoreVersionRecord(
    score_id="scr-1",
    session_id="ses-1",
    version=1,
    status="SCORE_STATUS_FINAL",
    reason="section closed",
    blueprint_version="v1",
    cut_table_version="cut-1",
    total=TotalFigures(band="4.5", cefr="B2", comparable_low=86, comparable_high=93, comparable_midpoint=90),
    sections=(READING,),
    create_ms=1,
)


def recomputed(**section_changes: object) -> ScoreVersionRecord:
    section = dataclasses.replace(READING, **section_changes)  # type: ignore[arg-type]
    return dataclasses.replace(STORED, score_id="scr-2", version=2, sections=(section,), create_ms=2)


def test_the_same_figures_are_no_new_version() -> None:
    assert not differs(STORED, recomputed())


def test_a_last_bit_difference_in_theta_or_se_is_no_new_version() -> None:
    assert not differs(
        STORED, recomputed(theta=READING.theta + 2e-16, standard_error=READING.standard_error - 1e-15)
    )


@pytest.mark.parametrize(
    "change",
    [
        {"theta": READING.theta + 10 * FIGURE_TOLERANCE},
        {"standard_error": READING.standard_error - 1e-4},
        {"band": "5.0"},
        {"status": "SCORE_STATUS_PROVISIONAL"},
        {"parameters_json": '{"itm-1":2}'},
    ],
)
def test_a_real_change_is_a_new_version(change: dict[str, object]) -> None:
    assert differs(STORED, recomputed(**change))


def test_a_first_score_or_another_cut_table_is_a_new_version() -> None:
    assert differs(None, STORED)
    assert differs(STORED, dataclasses.replace(recomputed(), cut_table_version="cut-2"))
    assert differs(STORED, dataclasses.replace(recomputed(), sections=()))
