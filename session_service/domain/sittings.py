"""A sitting's rules: its window, its access code, practice outside sittings, a seat's state for its proctors."""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from session_service.domain.states import STATE_FINISHED
from toefl_core.errors import FailedPrecondition, InvalidArgument

# The longest window a sitting may have: a school's exam day, with room for late groups (a typo in a year is
# refused rather than leaving a sitting open for months).
MAX_WINDOW_MS = 7 * 86_400_000
MAX_ACCESS_CODE = 40
MAX_TITLE = 200


def rfc3339(ms: int) -> str:
    return f"{dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC):%Y-%m-%dT%H:%M:%SZ}"


def check_window(*, opens_ms: int, closes_ms: int) -> None:
    """A sitting opens before it closes, and not for longer than MAX_WINDOW_MS."""
    if opens_ms <= 0:
        raise InvalidArgument("open_time is required", field="sitting.open_time")
    if closes_ms <= opens_ms:
        raise InvalidArgument("close_time must be after open_time", field="sitting.close_time")
    if closes_ms - opens_ms > MAX_WINDOW_MS:
        raise InvalidArgument("a sitting is open for at most 7 days", field="sitting.close_time")


def check_details(*, title: str, access_code: str) -> None:
    if len(title) > MAX_TITLE:
        raise InvalidArgument(f"title is longer than {MAX_TITLE} characters", field="sitting.title")
    if len(access_code) > MAX_ACCESS_CODE or not access_code.isprintable():
        raise InvalidArgument(
            f"access_code must be at most {MAX_ACCESS_CODE} printable characters", field="sitting.access_code"
        )


def start_refusal(*, opens_ms: int, closes_ms: int, now_ms: int) -> FailedPrecondition | None:
    """Why a session for the sitting cannot start now (None: it can): the window is the sitting's, on the server's
    clock, so a student can neither start early nor slip in after it closed."""
    if now_ms < opens_ms:
        return FailedPrecondition(
            f"this sitting opens at {rfc3339(opens_ms)}; you may start then",
            reason="SITTING_NOT_OPEN",
            metadata={"open_time": rfc3339(opens_ms), "close_time": rfc3339(closes_ms)},
        )
    if now_ms >= closes_ms:
        return FailedPrecondition(
            f"this sitting closed at {rfc3339(closes_ms)}; no new session can start",
            reason="SITTING_CLOSED",
            metadata={"close_time": rfc3339(closes_ms)},
        )
    return None


def check_access_code(*, expected: str, given: str) -> None:
    """A sitting with a code asks for it; compared in constant time, so the code is not guessed by timing."""
    if expected and not hmac.compare_digest(expected.encode(), given.encode()):
        raise InvalidArgument(
            "the access code is not this sitting's; ask your proctor",
            field="access_code",
            reason="ACCESS_CODE_INVALID",
        )


def check_practice(*, allowed: bool) -> None:
    """Where the school allows no practice outside sittings, a student starts only a sitting's session."""
    if not allowed:
        raise FailedPrecondition(
            "this school runs tests only in scheduled sittings; start the session from your sitting",
            reason="PRACTICE_NOT_ALLOWED",
        )


@dataclass(frozen=True)
class Seat:
    """A student of a sitting's class as its proctors see them (no session yet: `session_id` None)."""

    student_id: str
    display_name: str
    session_id: str | None = None
    session_state: str = ""
    paused: bool = False
    voided: bool = False
    section: str = ""
    stage: str = ""
    module_sequence: int = 0
    module_open: bool = False
    deadline_ms: int = 0
    paused_ms: int | None = None
    answered: int = 0
    items: int = 0
    focus_lost: int = 0
    last_activity_ms: int = 0


def seat_state(seat: Seat) -> str:
    """The state a proctor reads: a void and a finish outrank a pause, a pause outranks working."""
    if seat.session_id is None:
        return "SEAT_STATE_NOT_STARTED"
    if seat.voided:
        return "SEAT_STATE_VOIDED"
    if seat.session_state == STATE_FINISHED:
        return "SEAT_STATE_FINISHED"
    if seat.paused:
        return "SEAT_STATE_PAUSED"
    return "SEAT_STATE_IN_PROGRESS"
