"""Whether a session takes an answer: one rule for the servicer's early check and the writer's final one."""

from __future__ import annotations

from dataclasses import dataclass

from session_service.domain.states import STATE_IN_PROGRESS, STATUS_EXPIRED, STATUS_OPEN
from toefl_core.errors import FailedPrecondition


@dataclass(frozen=True)
class SessionHead:
    """A session as an answer meets it: its state and its current module (none after the last one)."""

    session_id: str
    student_id: str
    state: str
    module_id: str | None
    module_sequence: int
    module_status: str
    deadline_ms: int


def closed_module_error(sequence: int, status: str) -> FailedPrecondition:
    """Why a closed module refuses answers: its deadline passed (the sweep or a late call closed it), or it was
    closed by an advance or a finish."""
    if status == STATUS_EXPIRED:
        return FailedPrecondition(
            f"module {sequence}'s time is up; no more answers are accepted (earlier answers are kept)"
        )
    return FailedPrecondition(f"module {sequence} is closed; no more answers are accepted")


def answer_refusal(
    head: SessionHead, *, module_id: str | None, item_id: str, in_module: bool = True
) -> FailedPrecondition | None:
    """Why the session refuses an answer to `item_id`, given in `module_id`; None when it takes it (until the
    deadline: see `too_late`). `in_module`: whether the item is one of that module's items."""
    if head.state != STATE_IN_PROGRESS:
        return FailedPrecondition("the session is finished; no more answers are accepted")
    if head.module_id is None:
        return FailedPrecondition("the session has no current module; no more answers are accepted")
    if head.module_id != module_id or not in_module:
        return FailedPrecondition(f"item {item_id} is not in the current module")
    if head.module_status != STATUS_OPEN:
        return closed_module_error(head.module_sequence, head.module_status)
    return None


def too_late(head: SessionHead, received_ms: int) -> bool:
    """An answer received at or after the module's deadline is refused, and the module expires with it."""
    return received_ms >= head.deadline_ms


LATE_ANSWER = "the module's time is up; the answer was not saved (earlier answers are kept)"
