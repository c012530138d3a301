"""A module's seed, deadline, remaining time and how it closes."""

from __future__ import annotations

from session_service.domain.modules import Closing, closing, deadline_ms, module_seed, remaining_seconds
from session_service.domain.states import STATUS_CLOSED, STATUS_EXPIRED


def test_a_module_closed_before_its_deadline_is_closed_now() -> None:
    assert closing(deadline_ms=10_000, now_ms=4_000) == Closing(STATUS_CLOSED, 4_000)


def test_a_module_closed_at_or_after_its_deadline_expired_at_the_deadline() -> None:
    assert closing(deadline_ms=10_000, now_ms=10_000) == Closing(STATUS_EXPIRED, 10_000)
    assert closing(deadline_ms=10_000, now_ms=99_000) == Closing(STATUS_EXPIRED, 10_000)


def test_the_seed_is_fixed_per_session_and_module_and_fits_a_signed_64_bit_column() -> None:
    seed = module_seed("ses-1", 1)
    assert seed == module_seed("ses-1", 1)
    assert seed != module_seed("ses-1", 2) and seed != module_seed("ses-2", 1)
    assert 0 <= seed < 2**63


def test_the_deadline_follows_the_time_limit_on_the_scaled_clock() -> None:
    assert deadline_ms(start_ms=1_000, time_limit_seconds=1800, time_scale=1.0) == 1_801_000
    assert deadline_ms(start_ms=1_000, time_limit_seconds=1800, time_scale=0.001) == 2_800


def test_remaining_seconds_round_down_and_never_go_negative() -> None:
    assert remaining_seconds(10_999, 1_000) == 9
    assert remaining_seconds(1_000, 5_000) == 0
