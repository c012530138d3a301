"""Second-stage modules assembled while their router module is open, so that routing needs no assembly."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from session_service.blueprint import ModulePlan
from session_service.storage.sessions import NewModule
from toefl_core.lru import LRU

log = logging.getLogger(__name__)

# Students whose second-stage modules are kept ready (two modules each, a few tens of kilobytes each).
MAX_PREPARED = 2_000
# How long after its router was due to close a prepared place is kept for an advance to take: the deadline rush's
# advances come a sweep interval after the deadline. Later, its session has moved on without it (an advance came
# before it was prepared) or stopped; kept, such places would fill the store for good.
STALE_AFTER_SECONDS = 300.0


@dataclass(frozen=True)
class Candidates:
    """What to assemble for a session whose router module just opened: each second stage it may be routed to."""

    session_id: str
    sequence: int
    plans: tuple[ModulePlan, ...]
    exclude_item_ids: frozenset[str]
    # How long after now to assemble them.
    after_seconds: float


Assemble = Callable[[Candidates, ModulePlan], Awaitable[NewModule]]


@dataclass(frozen=True)
class Prepared:
    """A place's assembled modules, kept for its advance until `stale_at` (time.monotonic())."""

    stale_at: float
    exclude_item_ids: frozenset[str]
    modules: dict[str, NewModule]


class ModulePreparer:
    """Assembles the lower and the upper module of every session whose router opened, one assembly at a time and a
    while after the router opened (by default halfway through its time), and keeps them until the router closes.

    Every student of a room whose router modules expire together asks for the next module in the same second;
    each advance then assembled a module on item_service (its largest part after the write). Prepared, an advance
    takes the module routed to and leaves the other. The seed of a module follows from its session and place, so
    a prepared module is the one the advance would have assembled (only the pretest items may differ, balanced on
    the tally of a few minutes earlier). A module is used only if the items it avoids are exactly those the
    session has seen; otherwise, or when none is ready (another process opened the router, a restart, the store
    full), the advance assembles as before.
    """

    def __init__(self, assemble: Assemble, *, limit: int = MAX_PREPARED) -> None:
        self._limit = limit
        self._assemble = assemble
        self._queue: asyncio.Queue[tuple[float, Candidates]] = asyncio.Queue()
        # (session, place) -> its modules, in the order prepared. Stale places are dropped from the oldest on:
        # behind one of a longer router, a stale place waits until that one goes stale too (at most a router's
        # time).
        self._ready: LRU[tuple[str, int], Prepared] = LRU(limit)
        self._full = False

    def router_opened(self, candidates: Candidates) -> None:
        self._queue.put_nowait((time.monotonic() + candidates.after_seconds, candidates))

    def take(self, *, session_id: str, sequence: int, plan_key: str, seen: Sequence[str]) -> NewModule | None:
        """The module prepared for this place, if it avoids exactly the items seen; every candidate of the place
        is dropped."""
        ready = self._ready.pop((session_id, sequence))
        if ready is None or ready.exclude_item_ids != frozenset(seen):
            return None
        return ready.modules.get(plan_key)

    def __len__(self) -> int:
        return len(self._ready)

    async def run_forever(self) -> None:
        while True:
            due, candidates = await self._queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not self._room():
                # Put now, it would push out a place prepared earlier, whose router closes sooner: that work would
                # be lost and done again at its advance (at 10,000 students most of it was). Its advance assembles.
                continue
            modules: dict[str, NewModule] = {}
            for plan in candidates.plans:
                try:
                    modules[plan.key] = await self._assemble(candidates, plan)
                except Exception:
                    # The advance assembles it then, as it would have without preparing.
                    log.warning("preparing module %s of %s failed", plan.key, candidates.session_id, exc_info=True)
            # Its router closes about `after_seconds` from now, when the preparing started halfway through it.
            stale_at = time.monotonic() + candidates.after_seconds + STALE_AFTER_SECONDS
            self._ready.put(
                (candidates.session_id, candidates.sequence),
                Prepared(stale_at=stale_at, exclude_item_ids=candidates.exclude_item_ids, modules=modules),
            )
            log.info("session %s: second stages prepared (%s)", candidates.session_id, ", ".join(modules))

    def _room(self) -> bool:
        """Whether one more place fits, once the stale ones are dropped; says so when that changes."""
        now = time.monotonic()
        while (oldest := self._ready.oldest()) is not None and oldest[1].stale_at <= now:
            self._ready.pop(oldest[0])
        full = len(self._ready) >= self._limit
        if full != self._full:
            self._full = full
            if full:
                log.info("%d students' second stages are ready: the next assemble at their advance", len(self))
            else:
                log.info("room for prepared second stages again")
        return not full
