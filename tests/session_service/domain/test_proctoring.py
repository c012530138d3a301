"""A proctor's pause, resume, extension and void, and an answer's refusal while paused or voided."""

from __future__ import annotations

import dataclasses

import pytest

from session_service.domain import proctoring
from session_service.domain.answers import SessionHead, answer_refusal
from session_service.domain.states import STATE_FINISHED, STATE_IN_PROGRESS, STATUS_OPEN
from toefl_core.errors import DomainError

RUNNING = proctoring.SessionClock(
    state=STATE_IN_PROGRESS,
    paused_ms=None,
    voided_ms=None,
    module_id="mod-1",
    module_status=STATUS_OPEN,
    deadline_ms=100_000,
)
PAUSED = dataclasses.replace(RUNNING, paused_ms=40_000)


def reason(call: object) -> str | None:
    with pytest.raises(DomainError) as refused:
        call()  # type: ignore[operator]
    return refused.value.reason


def test_a_pause_freezes_the_time_left_and_a_resume_gives_it_back_exactly() -> None:
    assert proctoring.check_pause(RUNNING, now_ms=40_000) == "mod-1"
    assert proctoring.remaining_ms(deadline_ms=100_000, now_ms=900_000, paused_ms=40_000) == 60_000
    module_id, deadline = proctoring.resumed_deadline(PAUSED, now_ms=1_040_000)
    assert (module_id, deadline - 1_040_000) == ("mod-1", 60_000)
    assert reason(lambda: proctoring.check_pause(PAUSED, now_ms=50_000)) == "SESSION_PAUSED"
    assert reason(lambda: proctoring.resumed_deadline(RUNNING, now_ms=50_000)) == "SESSION_NOT_PAUSED"
    assert reason(lambda: proctoring.check_pause(RUNNING, now_ms=100_000)) == "MODULE_TIME_UP"


def test_an_extension_moves_the_deadline_even_while_paused() -> None:
    assert proctoring.extended_deadline(RUNNING, minutes=5, now_ms=50_000) == ("mod-1", 400_000)
    # Paused past the old deadline: the clock stood still, so the module is not late.
    assert proctoring.extended_deadline(PAUSED, minutes=1, now_ms=500_000) == ("mod-1", 160_000)
    assert reason(lambda: proctoring.extended_deadline(RUNNING, minutes=1, now_ms=100_000)) == "MODULE_TIME_UP"
    with pytest.raises(DomainError):
        proctoring.check_minutes(0)
    with pytest.raises(DomainError):
        proctoring.check_reason(" ", required=True)


def test_a_voided_or_finished_session_takes_no_action() -> None:
    voided = dataclasses.replace(RUNNING, voided_ms=1)
    assert reason(lambda: proctoring.check_void(voided)) == "SESSION_VOIDED"
    assert reason(lambda: proctoring.check_pause(voided, now_ms=0)) == "SESSION_VOIDED"
    finished = dataclasses.replace(RUNNING, state=STATE_FINISHED, module_id=None)
    assert reason(lambda: proctoring.check_pause(finished, now_ms=0)) == "SESSION_FINISHED"
    proctoring.check_void(finished)


def test_answers_are_refused_while_paused_before_the_deadline_is_looked_at() -> None:
    head = SessionHead("ses-1", "usr-1", STATE_IN_PROGRESS, "mod-1", 1, STATUS_OPEN, 10_000, paused=True)
    refusal = answer_refusal(head, module_id="mod-1", item_id="itm-1")
    assert (
        refusal is not None and refusal.reason == "SESSION_PAUSED" and "paused by your proctor" in refusal.message
    )
    voided = dataclasses.replace(head, paused=False, voided=True, state=STATE_FINISHED)
    refusal = answer_refusal(voided, module_id="mod-1", item_id="itm-1")
    assert refusal is not None and refusal.reason == "SESSION_VOIDED"
