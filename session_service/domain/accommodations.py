"""Accommodations: extra testing time (IMS additional-testing-time) and a break between sections."""

from __future__ import annotations

from dataclasses import dataclass

from toefl_core.errors import InvalidArgument

# 1.25, 1.5 and 2.0 are the usual grants; 3.0 bounds a typo (30.0 would keep a module open for hours).
MIN_MULTIPLIER = 1.0
MAX_MULTIPLIER = 3.0
MAX_BREAK_SECONDS = 1800
MAX_REASON = 1000


@dataclass(frozen=True)
class Accommodation:
    """What a session pins at its start: the factor on every module's time and the break before each later
    section."""

    time_multiplier: float = 1.0
    break_seconds: int = 0

    @property
    def standard(self) -> bool:
        return self.time_multiplier == 1.0 and self.break_seconds == 0


STANDARD = Accommodation()


def checked(*, time_multiplier: float, break_seconds: int, reason: str) -> Accommodation:
    """The accommodation as granted; 0 as the multiplier means standard time. Anything beyond the standard needs
    a reason: an extra-time grant is a decision somebody answers for."""
    multiplier = time_multiplier or 1.0
    if not MIN_MULTIPLIER <= multiplier <= MAX_MULTIPLIER:
        raise InvalidArgument(
            f"extra_time_multiplier must be between {MIN_MULTIPLIER} and {MAX_MULTIPLIER} (e.g. 1.25, 1.5, 2.0)",
            field="accommodation.extra_time_multiplier",
        )
    if not 0 <= break_seconds <= MAX_BREAK_SECONDS:
        raise InvalidArgument(
            f"break_seconds must be between 0 and {MAX_BREAK_SECONDS}", field="accommodation.break_seconds"
        )
    if len(reason) > MAX_REASON:
        raise InvalidArgument(f"reason is longer than {MAX_REASON} characters", field="accommodation.reason")
    granted = Accommodation(time_multiplier=multiplier, break_seconds=break_seconds)
    if not granted.standard and not reason.strip():
        raise InvalidArgument("an accommodation needs a reason", field="accommodation.reason")
    return granted


def module_seconds(time_limit_seconds: float, accommodation: Accommodation, *, new_section: bool) -> float:
    """A module's time with the session's accommodation: the blueprint's limit times the multiplier, and the break
    allowance before the first module of every section after the first."""
    return time_limit_seconds * accommodation.time_multiplier + (accommodation.break_seconds if new_section else 0)
