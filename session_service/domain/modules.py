"""A module's life: its seed, its deadline, and how it closes (closed now, or expired at its deadline)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from session_service.domain.states import STAGE_LINEAR, STAGE_ROUTER, STATUS_CLOSED, STATUS_EXPIRED


def now_ms() -> int:
    """The server's clock, in milliseconds since the epoch: deadlines are the server's, never the browser's."""
    return int(time.time() * 1000)


def module_seed(session_id: str, sequence: int) -> int:
    """Deterministic per (session, module): a replay of the session assembles the same modules."""
    digest = hashlib.sha256(f"{session_id}:{sequence}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def deadline_ms(*, start_ms: int, time_limit_seconds: float, time_scale: float) -> int:
    """The server's deadline of a module opened at `start_ms`; `time_scale` shortens the clock in tests."""
    return start_ms + round(time_limit_seconds * time_scale * 1000)


def first_of_later_section(sequence: int, stage: str) -> bool:
    """Whether a module opens a section after the first: where an accommodation's break allowance goes. A section
    opens with its router (adaptive) or its one linear module."""
    return sequence > 1 and stage in (STAGE_ROUTER, STAGE_LINEAR)


def remaining_seconds(deadline_ms: int, now_ms: int) -> int:
    return max(0, (deadline_ms - now_ms) // 1000)


@dataclass(frozen=True)
class Closing:
    """How an open module closes: its status and the time it is recorded closed at."""

    status: str
    close_ms: int


def closing(*, deadline_ms: int, now_ms: int) -> Closing:
    """An open module closed at `now_ms`: EXPIRED at its deadline once that has passed, else CLOSED now.

    A module is never recorded as closed after its deadline: what the student did not do in time is expired.
    """
    if now_ms >= deadline_ms:
        return Closing(STATUS_EXPIRED, deadline_ms)
    return Closing(STATUS_CLOSED, now_ms)
