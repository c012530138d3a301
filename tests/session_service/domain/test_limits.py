"""The daily session limit: refused at the limit, with the limit and the reset time in the message."""

from __future__ import annotations

import pytest

from session_service.domain.limits import DAY_MS, check_daily_sessions, utc_day_start_ms
from toefl_core.errors import ResourceExhausted

# 2026-03-05T17:30:00Z
NOW = 1_772_731_800_000


def test_the_day_starts_at_utc_midnight() -> None:
    assert utc_day_start_ms(NOW) == 1_772_668_800_000
    assert utc_day_start_ms(utc_day_start_ms(NOW)) == utc_day_start_ms(NOW)
    assert utc_day_start_ms(utc_day_start_ms(NOW) - 1) == utc_day_start_ms(NOW) - DAY_MS


def test_below_the_limit_is_allowed() -> None:
    check_daily_sessions(started_today=0, limit=10, now_ms=NOW)
    check_daily_sessions(started_today=9, limit=10, now_ms=NOW)


@pytest.mark.parametrize("started", [10, 11, 500])
def test_at_the_limit_is_refused_naming_it_and_the_reset(started: int) -> None:
    with pytest.raises(ResourceExhausted) as caught:
        check_daily_sessions(started_today=started, limit=10, now_ms=NOW)
    assert "at most 10 sessions per UTC day" in caught.value.message
    assert "resets at 2026-03-06T00:00:00Z" in caught.value.message
