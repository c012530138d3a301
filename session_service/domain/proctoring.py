"""A proctor's actions on a session: pause (the clock stands still), resume with the time that was left, extend
the current module, void; and what each needs of the session's state."""

from __future__ import annotations

from dataclasses import dataclass

from session_service.domain.states import STATE_IN_PROGRESS, STATUS_OPEN
from toefl_core.errors import FailedPrecondition, InvalidArgument

PAUSE, RESUME, EXTEND, VOID = "pause_session", "resume_session", "extend_session", "void_session"
MAX_EXTENSION_MINUTES = 120
MAX_REASON = 1000
PAUSED_MESSAGE = "the test is paused by your proctor; everything you entered is saved; wait until they resume it"


@dataclass(frozen=True)
class SessionClock:
    """A session as a proctor's action meets it, locked: its state, pause, void and current module."""

    state: str
    paused_ms: int | None
    voided_ms: int | None
    module_id: str | None
    module_status: str
    deadline_ms: int


def paused_error() -> FailedPrecondition:
    return FailedPrecondition(PAUSED_MESSAGE, reason="SESSION_PAUSED")


def voided_error() -> FailedPrecondition:
    return FailedPrecondition(
        "this session was voided by a proctor; nothing more is accepted", reason="SESSION_VOIDED"
    )


def remaining_ms(*, deadline_ms: int, now_ms: int, paused_ms: int | None) -> int:
    """Time left in the module: while paused, what was left at the pause, however long the pause lasts."""
    return max(0, deadline_ms - (paused_ms if paused_ms is not None else now_ms))


def check_reason(reason: str, *, required: bool) -> None:
    if len(reason) > MAX_REASON:
        raise InvalidArgument(f"reason is longer than {MAX_REASON} characters", field="reason")
    if required and not reason.strip():
        raise InvalidArgument("a reason is required, for the audit log", field="reason")


def check_minutes(minutes: int) -> None:
    if not 1 <= minutes <= MAX_EXTENSION_MINUTES:
        raise InvalidArgument(f"minutes must be 1 to {MAX_EXTENSION_MINUTES}", field="minutes")


def _running(clock: SessionClock) -> None:
    if clock.voided_ms is not None:
        raise voided_error()
    if clock.state != STATE_IN_PROGRESS:
        raise FailedPrecondition("the session is finished", reason="SESSION_FINISHED")


def _open_module(clock: SessionClock) -> str:
    if clock.module_id is None or clock.module_status != STATUS_OPEN:
        raise FailedPrecondition("the session has no open module", reason="NO_CURRENT_MODULE")
    return clock.module_id


def check_pause(clock: SessionClock, *, now_ms: int) -> str:
    """A running session with an open module still within its time; returns that module."""
    _running(clock)
    if clock.paused_ms is not None:
        raise FailedPrecondition("the session is already paused", reason="SESSION_PAUSED")
    module_id = _open_module(clock)
    if now_ms >= clock.deadline_ms:
        raise FailedPrecondition("the module's time is already up", reason="MODULE_TIME_UP")
    return module_id


def resumed_deadline(clock: SessionClock, *, now_ms: int) -> tuple[str, int]:
    """The open module and its new deadline: moved by exactly the length of the pause, so the student has what
    was left when the proctor paused, to the millisecond."""
    _running(clock)
    if clock.paused_ms is None:
        raise FailedPrecondition("the session is not paused", reason="SESSION_NOT_PAUSED")
    return _open_module(clock), clock.deadline_ms + max(0, now_ms - clock.paused_ms)


def extended_deadline(clock: SessionClock, *, minutes: int, now_ms: int) -> tuple[str, int]:
    """The open module and its deadline `minutes` later. A module whose time ran out is closed already (or closes
    at the next look): an extension gives more time, it does not reopen a module."""
    _running(clock)
    module_id = _open_module(clock)
    if clock.paused_ms is None and now_ms >= clock.deadline_ms:
        raise FailedPrecondition("the module's time is already up", reason="MODULE_TIME_UP")
    return module_id, clock.deadline_ms + minutes * 60_000


def check_void(clock: SessionClock) -> None:
    if clock.voided_ms is not None:
        raise voided_error()
