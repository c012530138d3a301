"""Which sections are closed, and which of them a section close scores."""

from __future__ import annotations

from session_service.domain.scores import (
    ModuleState,
    ScoreVersionRecord,
    SectionFigures,
    closed_sections,
    sections_to_score,
)
from session_service.domain.states import (
    STAGE_LOWER,
    STAGE_ROUTER,
    STATUS_CLOSED,
    STATUS_EXPIRED,
    STATUS_OPEN,
)

READING, LISTENING = "SECTION_READING", "SECTION_LISTENING"


def test_a_closed_router_leaves_its_section_open_until_the_second_stage_closes() -> None:
    routed = [ModuleState(READING, STAGE_ROUTER, STATUS_CLOSED), ModuleState(READING, STAGE_LOWER, STATUS_OPEN)]
    assert closed_sections(routed, finished=False) == set()
    done = [ModuleState(READING, STAGE_ROUTER, STATUS_CLOSED), ModuleState(READING, STAGE_LOWER, STATUS_EXPIRED)]
    assert closed_sections(done, finished=False) == {READING}


def test_a_router_alone_closes_its_section_only_when_the_session_finishes() -> None:
    router_only = [ModuleState(READING, STAGE_ROUTER, STATUS_CLOSED)]
    assert closed_sections(router_only, finished=False) == set()
    assert closed_sections(router_only, finished=True) == {READING}


def test_a_section_with_an_open_module_is_never_closed() -> None:
    modules = [ModuleState(READING, STAGE_LOWER, STATUS_CLOSED), ModuleState(LISTENING, STAGE_ROUTER, STATUS_OPEN)]
    assert closed_sections(modules, finished=True) == {READING}


def test_only_sections_without_a_score_are_scored_at_a_close() -> None:
    previous = ScoreVersionRecord(
        score_id="scr-1",
        session_id="ses-1",
        version=1,
        status="SCORE_STATUS_PROVISIONAL",
        reason="section_closed",
        blueprint_version="v",
        cut_table_version="c",
        total=None,
        sections=(
            SectionFigures(
                section=READING,
                status="SCORE_STATUS_FINAL",
                theta=0.0,
                standard_error=0.3,
                band="4.0",
                cefr="B2",
                band_low="3.5",
                band_high="4.5",
                items_used=20,
                items_awaiting_rating=0,
                task_types_json="[]",
                parameters_json="{}",
            ),
        ),
        create_ms=0,
    )
    assert sections_to_score({READING, LISTENING}, None) == {READING, LISTENING}
    assert sections_to_score({READING, LISTENING}, previous) == {LISTENING}
    assert sections_to_score({READING}, previous) == set()
