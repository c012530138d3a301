"""The modules that may follow an open module, assembled while it runs, so that an advance needs no assembly."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from session_service.blueprint import ModulePlan
from session_service.storage.sessions import NewModule
from toefl_core.lru import LRU

log = logging.getLogger(__name__)

# Students whose next modules are kept ready (up to two modules each, a few tens of kilobytes each).
MAX_PREPARED = 2_000
# How long after its module was due to close a prepared place is kept for an advance to take: the deadline rush's
# advances come a sweep interval after the deadline. Later, its session has moved on without it (an advance came
# before it was prepared) or stopped; kept, such places would fill the store for good.
STALE_AFTER_SECONDS = 300.0
# Calls to item_service at once, each for every place due then (a place's modules, a router's two second stages,
# together). A call's time is mostly waits (item_service, a turn of the event loop, a reader): one at a time, a
# room paced alike still had its last second stages assembled as its router ended; two at once, with three or four
# seconds to spare (docs/PERFORMANCE.md of 2026-12-07). Three at once put the capacity row's answers beyond their
# target on 2026-12-05 (single runs).
CONCURRENT_ASSEMBLIES = 2
# Places per call: a room's places fall due together, and each call to item_service costs both services more than
# the module it assembles (docs/PERFORMANCE.md of 2026-12-07, evening); up to 32 modules, within item_service's 64.
PLACES_PER_CALL = 16
# Entries of the schedule beyond those of the places waiting (taken, or brought forward by answers) that are
# tolerated before it is rebuilt without them.
SCHEDULE_SLACK = 64


@dataclass(frozen=True)
class Candidates:
    """What to assemble for a session whose module just opened: each module that may follow it (a router's second
    stages, else the next section's first module)."""

    session_id: str
    # The module just opened, and the place after it.
    after_module_id: str
    sequence: int
    plans: tuple[ModulePlan, ...]
    exclude_item_ids: frozenset[str]
    # How long after now to assemble them at the latest.
    after_seconds: float
    # Answers after which to assemble them at once (`due_after_answers`): a student who answers at a brisk pace
    # asks for the next module long before half its time.
    after_answers: int


# Every module of these places at once (one call to item_service): each assembled module, or why it was not, in
# the order asked.
Assemble = Callable[[Sequence[tuple[Candidates, ModulePlan]]], Awaitable[Sequence[NewModule | Exception]]]


def due_after_answers(items: int) -> int:
    """How many of an open module's `items` a student answers before the modules that may follow it fall due: a
    quarter, at least one.

    A room paced alike reaches the end of its router within one answer interval, and its places are assembled one
    after the other: from half the items answered, the last students' were not ready at their advance, which then
    assembled on item_service in the middle of the room's module change. Not from the first answer: that comes
    while the module change that opened the module is still going on (docs/PERFORMANCE.md)."""
    return max(1, items // 4)


@dataclass(frozen=True)
class Prepared:
    """A place's assembled modules, kept for its advance until `stale_at` (time.monotonic())."""

    stale_at: float
    after_module_id: str
    exclude_item_ids: frozenset[str]
    modules: dict[str, NewModule]


@dataclass
class _Waiting:
    """A place not yet assembled: due at `latest` (time.monotonic()), or earlier once enough answers came."""

    candidates: Candidates
    latest: float
    due: float
    answers: int = 0


def _place(waiting: _Waiting) -> tuple[str, int]:
    return waiting.candidates.session_id, waiting.candidates.sequence


class ModulePreparer:
    """Assembles the modules that may follow every module opened in this process, in `CONCURRENT_ASSEMBLIES` calls
    at a time, each for every place due then, in the order they fall due: halfway through the open module's
    time by default, or as soon as the student has answered a quarter of its items; and keeps them until that
    module closes.

    Every student of a room whose modules expire together, or who answer at one pace, asks for the next module in
    the same second; each advance then assembled a module on item_service (its largest part after the write).
    Prepared, an advance takes the module it goes to and leaves the other. The seed of a module follows from its
    session and place, so a prepared module is the one the advance would have assembled (only the pretest items
    may differ, balanced on the tally of a few minutes earlier). A module is used only by an advance from the very
    module it was prepared after: a module's items never change, so the items it avoids are then exactly those the
    session has seen, and the advance needs no read for them. Otherwise, or when none is ready (another process
    opened the module, a restart, the store full), the advance assembles as before. A place its advance came to
    first is never assembled.
    """

    def __init__(self, assemble: Assemble, *, limit: int = MAX_PREPARED) -> None:
        self._limit = limit
        self._assemble = assemble
        # Per session, the place waiting to be assembled (one module is open at a time in a session).
        self._waiting: dict[str, _Waiting] = {}
        # (due, order, place): an entry whose place is no longer waiting, or is due at another time, is skipped,
        # and dropped when the schedule is rebuilt (`_compact`).
        self._due: list[tuple[float, int, _Waiting]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        # The places being assembled, each with whether its advance came meanwhile (then it is not kept).
        self._assembling: dict[tuple[str, int], bool] = {}
        # (session, place) -> its modules, in the order prepared. Stale places are dropped from the oldest on:
        # behind one of a longer module, a stale place waits until that one goes stale too (at most a module's
        # time).
        self._ready: LRU[tuple[str, int], Prepared] = LRU(limit)
        self._full = False

    def module_opened(self, candidates: Candidates) -> None:
        latest = time.monotonic() + candidates.after_seconds
        self._schedule(_Waiting(candidates, latest=latest, due=latest))

    def answered(self, session_id: str) -> None:
        """A first answer to an item of the session's open module was stored: `due_after_answers` of them bring
        the next modules forward."""
        waiting = self._waiting.get(session_id)
        if waiting is None:
            return
        waiting.answers += 1
        now = time.monotonic()
        if waiting.answers >= waiting.candidates.after_answers and waiting.due > now:
            waiting.due = now
            self._schedule(waiting)

    def _schedule(self, waiting: _Waiting) -> None:
        self._waiting[waiting.candidates.session_id] = waiting
        if not self._due or waiting.due < self._due[0][0]:
            self._wake.set()
        heapq.heappush(self._due, (waiting.due, next(self._order), waiting))
        self._compact()

    def _compact(self) -> None:
        """The schedule rebuilt without its skipped entries once they outnumber the places waiting (plus
        `SCHEDULE_SLACK`). Each waits for its original time to reach the front, and a place is due halfway through
        its module: meanwhile every place taken or brought forward kept its entry, with the items its session had
        seen, for minutes."""
        if len(self._due) > 2 * len(self._waiting) + SCHEDULE_SLACK:
            self._due = [entry for entry in self._due if self._current(entry)]
            heapq.heapify(self._due)

    def scheduled(self) -> int:
        """Entries in the schedule, skipped ones included: at most twice the places waiting plus a few."""
        return len(self._due)

    def take(
        self, *, session_id: str, sequence: int, plan_key: str, after_module_id: str
    ) -> tuple[NewModule, frozenset[str]] | None:
        """The module prepared for this place after that module, and the items it avoids (those the session has
        seen); every candidate of the place is dropped, and one not yet assembled never will be."""
        waiting = self._waiting.get(session_id)
        if waiting is not None and waiting.candidates.sequence == sequence:
            del self._waiting[session_id]
            self._compact()
        if (session_id, sequence) in self._assembling:
            self._assembling[session_id, sequence] = True
        ready = self._ready.pop((session_id, sequence))
        if ready is None or ready.after_module_id != after_module_id or plan_key not in ready.modules:
            return None
        return ready.modules[plan_key], ready.exclude_item_ids

    def __len__(self) -> int:
        return len(self._ready)

    async def _next_due(self) -> _Waiting:
        while True:
            waiting = self._due_now()
            if waiting is not None:
                return waiting
            self._wake.clear()
            if not self._due:
                await self._wake.wait()
                continue
            # Something may fall due sooner meanwhile (a quarter of a module answered, a shorter module opened).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._due[0][0] - time.monotonic())

    def _due_now(self) -> _Waiting | None:
        """The next place due by now, taken off the schedule; None if none is."""
        while self._due and not self._current(self._due[0]):
            heapq.heappop(self._due)
        if not self._due or self._due[0][0] > time.monotonic():
            return None
        _, _, waiting = heapq.heappop(self._due)
        del self._waiting[waiting.candidates.session_id]
        return waiting

    def _current(self, entry: tuple[float, int, _Waiting]) -> bool:
        due, _, waiting = entry
        return self._waiting.get(waiting.candidates.session_id) is waiting and waiting.due == due

    async def run_forever(self) -> None:
        await asyncio.gather(*(self._assemble_forever() for _ in range(CONCURRENT_ASSEMBLIES)))

    async def _assemble_forever(self) -> None:
        while True:
            places = await self._places_due()
            asked = [(waiting.candidates, plan) for waiting in places for plan in waiting.candidates.plans]
            outcomes: Sequence[NewModule | Exception]
            try:
                outcomes = await self._assemble(asked)
            except Exception as error:
                # Their advances assemble them then, as they would have without preparing.
                outcomes = [error] * len(asked)
            finally:
                passed = {place: self._assembling.pop(place) for place in map(_place, places)}
            results = iter(zip(asked, outcomes, strict=True))
            for waiting in places:
                candidates = waiting.candidates
                modules: dict[str, NewModule] = {}
                for (_, plan), result in itertools.islice(results, len(candidates.plans)):
                    if isinstance(result, Exception):
                        # Its advance assembles it then, as it would have without preparing.
                        log.warning(
                            "preparing module %s of %s failed", plan.key, candidates.session_id, exc_info=result
                        )
                    else:
                        modules[plan.key] = result
                if passed[_place(waiting)]:
                    # Its advance came while it was assembled, and assembled for itself.
                    continue
                # Its module closes about `after_seconds` after the latest it was due (halfway through it).
                stale_at = waiting.latest + candidates.after_seconds + STALE_AFTER_SECONDS
                self._ready.put(
                    _place(waiting),
                    Prepared(
                        stale_at=stale_at,
                        after_module_id=candidates.after_module_id,
                        exclude_item_ids=candidates.exclude_item_ids,
                        modules=modules,
                    ),
                )
                log.info("session %s: next modules prepared (%s)", candidates.session_id, ", ".join(modules))

    async def _places_due(self) -> list[_Waiting]:
        """The places due now, the first one waited for, at most `PLACES_PER_CALL`, each counted as assembling
        (a place that would not fit the store is left to its advance)."""
        places: list[_Waiting] = []
        while not places:
            waiting = await self._next_due()
            while True:
                if self._room():
                    self._assembling[_place(waiting)] = False
                    places.append(waiting)
                # Put now, a place that does not fit would push out one prepared earlier, whose module closes
                # sooner: that work would be lost and done again at its advance (at 10,000 students most was).
                if len(places) >= PLACES_PER_CALL or (next_one := self._due_now()) is None:
                    break
                waiting = next_one
        return places

    def _room(self) -> bool:
        """Whether one more place fits, once the stale ones are dropped; says so when that changes."""
        now = time.monotonic()
        while (oldest := self._ready.oldest()) is not None and oldest[1].stale_at <= now:
            self._ready.pop(oldest[0])
        # The places being assembled count: put, they would push out the oldest one ready.
        full = len(self._ready) + len(self._assembling) >= self._limit
        if full != self._full:
            self._full = full
            if full:
                log.info("%d students' next modules are ready: the next assemble at their advance", len(self))
            else:
                log.info("room for prepared modules again")
        return not full
