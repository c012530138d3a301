"""Second-stage modules assembled while their router module is open, so that routing needs no assembly."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from session_service.blueprint import ModulePlan
from session_service.storage.sessions import NewModule

log = logging.getLogger(__name__)

# Students whose second-stage modules are kept ready (two modules each, a few tens of kilobytes each).
MAX_PREPARED = 2_000


@dataclass(frozen=True)
class Candidates:
    """What to assemble for a session whose router module just opened: each second stage it may be routed to."""

    session_id: str
    sequence: int
    plans: tuple[ModulePlan, ...]
    exclude_item_ids: frozenset[str]
    # How long after now to assemble them, at the latest.
    after_seconds: float
    # Answers after which to assemble them at once (half the router's items): a student who answers quickly
    # asks for the next module long before half the router's time.
    after_answers: int


Assemble = Callable[[Candidates, ModulePlan], Awaitable[NewModule]]


@dataclass
class _Pending:
    candidates: Candidates
    due: float
    answers: int = 0


class ModulePreparer:
    """Assembles the lower and the upper module of every session whose router opened, one assembly at a time, in
    the order they fall due: halfway through the router's time by default, or as soon as the student has answered
    half its items; and keeps them until the router closes.

    Every student of a room whose router modules expire together asks for the next module in the same second;
    each advance then assembled a module on item_service (its largest part after the write). Prepared, an advance
    takes the module routed to and leaves the other. The seed of a module follows from its session and place, so
    a prepared module is the one the advance would have assembled (only the pretest items may differ, balanced on
    the tally of a few minutes earlier). A module is used only if the items it avoids are exactly those the
    session has seen; otherwise, or when none is ready (another process opened the router, a restart, the store
    full), the advance assembles as before. A router closed before its second stages fell due has them dropped
    unassembled.
    """

    def __init__(self, assemble: Assemble, *, limit: int = MAX_PREPARED) -> None:
        self._assemble = assemble
        self._limit = limit
        # Per session, the router whose second stages are waiting (one router open at a time per session).
        self._pending: dict[str, _Pending] = {}
        # (due, order, session): an entry whose due no longer matches its pending one is stale and skipped.
        self._due: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        # (session, place) -> the items the modules avoid, and the module of each plan.
        self._ready: collections.OrderedDict[tuple[str, int], tuple[frozenset[str], dict[str, NewModule]]] = (
            collections.OrderedDict()
        )

    def router_opened(self, candidates: Candidates) -> None:
        self._schedule(_Pending(candidates, time.monotonic() + candidates.after_seconds))

    def answered(self, session_id: str) -> None:
        """An answer of the session was stored: half the router answered brings its second stages forward."""
        pending = self._pending.get(session_id)
        if pending is None:
            return
        pending.answers += 1
        now = time.monotonic()
        if pending.answers >= pending.candidates.after_answers and pending.due > now:
            pending.due = now
            self._schedule(pending)

    def _schedule(self, pending: _Pending) -> None:
        self._pending[pending.candidates.session_id] = pending
        heapq.heappush(self._due, (pending.due, next(self._order), pending.candidates.session_id))
        self._wake.set()

    def take(self, *, session_id: str, sequence: int, plan_key: str, seen: Sequence[str]) -> NewModule | None:
        """The module prepared for this place, if it avoids exactly the items seen; every candidate of the place
        is dropped, and one not yet assembled is not assembled."""
        waiting = self._pending.get(session_id)
        if waiting is not None and waiting.candidates.sequence == sequence:
            del self._pending[session_id]
        ready = self._ready.pop((session_id, sequence), None)
        if ready is None or ready[0] != frozenset(seen):
            return None
        return ready[1].get(plan_key)

    def __len__(self) -> int:
        return len(self._ready)

    async def _next_due(self) -> Candidates:
        while True:
            while not self._due:
                self._wake.clear()
                await self._wake.wait()
            due, _, session_id = self._due[0]
            pending = self._pending.get(session_id)
            if pending is None or pending.due != due:
                heapq.heappop(self._due)
                continue
            wait = due - time.monotonic()
            if wait <= 0:
                heapq.heappop(self._due)
                del self._pending[session_id]
                return pending.candidates
            # Something may fall due sooner meanwhile (an answer, a new router with a shorter time).
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def run_forever(self) -> None:
        while True:
            candidates = await self._next_due()
            modules: dict[str, NewModule] = {}
            for plan in candidates.plans:
                try:
                    modules[plan.key] = await self._assemble(candidates, plan)
                except Exception:
                    # The advance assembles it then, as it would have without preparing.
                    log.warning("preparing module %s of %s failed", plan.key, candidates.session_id, exc_info=True)
            while len(self._ready) >= self._limit:
                self._ready.popitem(last=False)
            self._ready[candidates.session_id, candidates.sequence] = (candidates.exclude_item_ids, modules)
            log.info("session %s: second stages prepared (%s)", candidates.session_id, ", ".join(modules))
