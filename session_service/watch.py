"""The live view of sittings: one look at the database per watched sitting and interval, shared by its watchers,
so that five proctors watching a room cost what one does and the answer path never waits for them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

from session_service.domain.sittings import Seat

log = logging.getLogger(__name__)
Look = Callable[[str, str], Awaitable[list[Seat]]]


@dataclass
class _Room:
    class_id: str
    watchers: int = 0
    seats: list[Seat] | None = None
    # Moves on at each change; a watcher waits on `changed` until it has seen the latest.
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class SittingWatch:
    """`views(sitting, class)` gives the seats now, then again whenever they change, looked at every `interval`
    seconds by one task per watched sitting (started by its first watcher, stopped after its last)."""

    def __init__(self, *, look: Look, interval: float) -> None:
        self._look = look
        self._interval = interval
        self._rooms: dict[str, _Room] = {}

    async def views(self, sitting_id: str, class_id: str) -> AsyncGenerator[list[Seat]]:
        room = self._rooms.get(sitting_id)
        if room is None:
            room = self._rooms[sitting_id] = _Room(class_id)
            room.task = asyncio.create_task(self._poll(sitting_id, room))
        room.watchers += 1
        seen = 0
        try:
            while True:
                changed = room.changed
                if room.version == seen:
                    await changed.wait()
                    continue
                seen = room.version
                assert room.seats is not None
                yield room.seats
        finally:
            room.watchers -= 1
            if room.watchers == 0 and self._rooms.get(sitting_id) is room:
                del self._rooms[sitting_id]
                if room.task is not None:
                    room.task.cancel()

    async def _poll(self, sitting_id: str, room: _Room) -> None:
        while True:
            try:
                seats = await self._look(sitting_id, room.class_id)
            except Exception:
                # A proctor's view must not die of one failed look (a locked database): the next one may pass.
                log.exception("live view of sitting %s: a look failed; trying again", sitting_id)
            else:
                if seats != room.seats:
                    room.seats = seats
                    room.version += 1
                    changed, room.changed = room.changed, asyncio.Event()
                    changed.set()
            await asyncio.sleep(self._interval)
