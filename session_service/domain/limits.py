"""How many sessions a student may start in one UTC day: a ceiling on harvesting keys by repetition."""

from __future__ import annotations

import datetime as dt

from toefl_core.errors import ResourceExhausted

DAY_MS = 86_400_000


def utc_day_start_ms(now_ms: int) -> int:
    """The start of the UTC day holding `now_ms`: the limit counts calendar days, which a student can read."""
    return now_ms - now_ms % DAY_MS


def check_daily_sessions(*, started_today: int, limit: int, now_ms: int) -> None:
    """Refuse a new session when the student already has `limit` sessions started this UTC day."""
    if started_today < limit:
        return
    resets_ms = utc_day_start_ms(now_ms) + DAY_MS
    resets = dt.datetime.fromtimestamp(resets_ms / 1000, tz=dt.UTC)
    raise ResourceExhausted(
        f"a student may start at most {limit} sessions per UTC day; this student has started {started_today} "
        f"today; the limit resets at {resets:%Y-%m-%dT%H:%M:%SZ}",
        reason="DAILY_SESSION_LIMIT",
        metadata={"limit": str(limit), "resets_at": f"{resets:%Y-%m-%dT%H:%M:%SZ}"},
        retry_after_seconds=(resets_ms - now_ms) / 1000,
    )
