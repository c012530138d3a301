"""A sitting's window and code, an accommodation's bounds and a module's time with it, in milliseconds."""

from __future__ import annotations

import pytest

from session_service.domain.accommodations import Accommodation, checked, module_seconds
from session_service.domain.sittings import check_access_code, check_practice, check_window, start_refusal
from toefl_core.errors import FailedPrecondition, InvalidArgument

OPENS, CLOSES = 1_800_000_000_000, 1_800_000_000_000 + 3_600_000


def test_a_session_starts_only_inside_the_window() -> None:
    early = start_refusal(opens_ms=OPENS, closes_ms=CLOSES, now_ms=OPENS - 1)
    assert early is not None and early.reason == "SITTING_NOT_OPEN"
    assert (
        early.metadata["open_time"] == "2027-01-15T08:00:00Z" and "opens at 2027-01-15T08:00:00Z" in early.message
    )
    assert start_refusal(opens_ms=OPENS, closes_ms=CLOSES, now_ms=OPENS) is None
    assert start_refusal(opens_ms=OPENS, closes_ms=CLOSES, now_ms=CLOSES - 1) is None
    late = start_refusal(opens_ms=OPENS, closes_ms=CLOSES, now_ms=CLOSES)
    assert late is not None and late.reason == "SITTING_CLOSED"


@pytest.mark.parametrize(("opens", "closes"), [(0, CLOSES), (OPENS, OPENS), (OPENS, OPENS + 8 * 86_400_000)])
def test_a_window_opens_before_it_closes_and_lasts_at_most_a_week(opens: int, closes: int) -> None:
    with pytest.raises(InvalidArgument):
        check_window(opens_ms=opens, closes_ms=closes)


def test_the_access_code_and_the_practice_setting() -> None:
    check_access_code(expected="", given="anything")
    check_access_code(expected="BLUE", given="BLUE")
    with pytest.raises(InvalidArgument) as wrong:
        check_access_code(expected="BLUE", given="")
    assert wrong.value.reason == "ACCESS_CODE_INVALID"
    check_practice(allowed=True)
    with pytest.raises(FailedPrecondition) as refused:
        check_practice(allowed=False)
    assert refused.value.reason == "PRACTICE_NOT_ALLOWED"


def test_an_accommodation_needs_a_reason_and_stays_within_bounds() -> None:
    assert checked(time_multiplier=0, break_seconds=0, reason="") == Accommodation()
    assert checked(time_multiplier=1.5, break_seconds=600, reason="approved") == Accommodation(1.5, 600)
    for multiplier, pause, reason in ((1.5, 0, " "), (0.5, 0, "x"), (3.5, 0, "x"), (1.0, 1801, "x")):
        with pytest.raises(InvalidArgument):
            checked(time_multiplier=multiplier, break_seconds=pause, reason=reason)


def test_a_module_gets_the_multiplier_and_a_later_section_the_break() -> None:
    extra = Accommodation(time_multiplier=1.25, break_seconds=300)
    assert module_seconds(1800, extra, new_section=False) == 2250
    assert module_seconds(1800, extra, new_section=True) == 2550
    assert module_seconds(1800, Accommodation(), new_section=True) == 1800
