"""Time lost to an outage of the service is given back to the modules that were open while it was down."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Outage:
    """The service was down from its last sign of life (`down_from_ms`) until it started again (`up_ms`)."""

    down_from_ms: int
    up_ms: int

    def time_back_ms(self, grace_ms: int) -> int:
        """What each module open during the outage gets back: the whole downtime, plus the grace a student's
        client needs to reach the service again (connections re-established, the answer sent again)."""
        return self.up_ms - self.down_from_ms + grace_ms


def may_be_alive(signs_of_life: Collection[int], *, now_ms: int, stale_ms: int) -> bool:
    """Whether a process that beat recently may still be running (another process of the service on the same
    PostgreSQL database, or this one's predecessor killed a moment ago): only watching its heartbeat tells."""
    return any(now_ms - alive_ms < stale_ms for alive_ms in signs_of_life)


def still_beating(before: Mapping[str, int], after: Mapping[str, int]) -> bool:
    """Whether some other process beat while this one watched: then the students were served meanwhile."""
    return any(alive_ms > before.get(process_id, -1) for process_id, alive_ms in after.items())


def outage_before(seen: Mapping[str, int] | None, now: Mapping[str, int], *, now_ms: int) -> Outage | None:
    """The outage this start ends, from the other processes' heartbeats `seen` silent at start-up (None: one was
    alive) and those stored `now`: from the last heartbeat until now, unless a process was alive, another one
    started since it looked (it beat meanwhile), or the service never ran on this database before."""
    if seen is None or not now or still_beating(seen, now):
        return None
    return Outage(down_from_ms=max(now.values()), up_ms=now_ms)
