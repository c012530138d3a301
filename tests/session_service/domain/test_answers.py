"""The rule for taking an answer, as both the servicer's early check and the writer's final one apply it."""

from __future__ import annotations

import dataclasses

import pytest

from session_service.domain.answers import SessionHead, answer_refusal, too_late
from session_service.domain.states import (
    STATE_FINISHED,
    STATE_IN_PROGRESS,
    STATUS_CLOSED,
    STATUS_EXPIRED,
    STATUS_OPEN,
)

OPEN = SessionHead(
    session_id="ses-1",
    student_id="usr-1",
    state=STATE_IN_PROGRESS,
    module_id="mod-2",
    module_sequence=2,
    module_status=STATUS_OPEN,
    deadline_ms=10_000,
)


def test_an_open_module_takes_an_answer_to_one_of_its_items() -> None:
    assert answer_refusal(OPEN, module_id="mod-2", item_id="itm-1") is None


@pytest.mark.parametrize(
    ("change", "module_id", "in_module", "expected"),
    [
        ({"state": STATE_FINISHED}, "mod-2", True, "the session is finished; no more answers are accepted"),
        ({"module_id": None}, "mod-2", True, "the session has no current module; no more answers are accepted"),
        ({}, "mod-1", True, "item itm-1 is not in the current module"),
        ({}, "mod-2", False, "item itm-1 is not in the current module"),
        ({"module_status": STATUS_CLOSED}, "mod-2", True, "module 2 is closed; no more answers are accepted"),
        (
            {"module_status": STATUS_EXPIRED},
            "mod-2",
            True,
            "module 2's time is up; no more answers are accepted (earlier answers are kept)",
        ),
    ],
)
def test_each_refusal_says_why(change: dict[str, object], module_id: str, in_module: bool, expected: str) -> None:
    head = dataclasses.replace(OPEN, **change)  # type: ignore[arg-type]
    refusal = answer_refusal(head, module_id=module_id, item_id="itm-1", in_module=in_module)
    assert refusal is not None and refusal.code == "FAILED_PRECONDITION" and refusal.message == expected


def test_a_finished_session_refuses_before_anything_else_is_looked_at() -> None:
    head = dataclasses.replace(OPEN, state=STATE_FINISHED, module_status=STATUS_EXPIRED)
    refusal = answer_refusal(head, module_id="other", item_id="itm-1", in_module=False)
    assert refusal is not None and "finished" in refusal.message


def test_the_deadline_itself_is_already_too_late() -> None:
    assert not too_late(OPEN, 9_999)
    assert too_late(OPEN, 10_000)
    assert too_late(OPEN, 10_001)
