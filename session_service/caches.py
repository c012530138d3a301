"""What session_service keeps between calls: session heads for answering, the pretest tally and the shared pinned
bodies for assembly."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

from session_service.domain.answers import SessionHead
from toefl_core.lru import LRU

# Sessions whose heads are kept: twice the 10,000 students one process is meant to carry at a 30-s pace.
MAX_HEADS = 20_000


class SessionHeads:
    """Heads of sessions being answered, so that an answer needs no read before its write.

    This process drops a head when it advances, finishes or erases; another process's change is caught by the
    writer, which checks everything again under its lock (the head is then dropped), or by a refusal here (the
    head is then read afresh). A head is trusted only while its module is open and before its deadline. Full, it
    forgets the head used least recently (cleared at once, a full cache made every student's next answer a read).
    """

    def __init__(self, limit: int = MAX_HEADS) -> None:
        self._heads: LRU[str, SessionHead] = LRU(limit)

    def get(self, session_id: str) -> SessionHead | None:
        return self._heads.get(session_id)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._heads

    def put(self, head: SessionHead) -> None:
        self._heads.put(head.session_id, head)

    def drop(self, session_id: str) -> None:
        self._heads.pop(session_id)

    def clear(self) -> None:
        self._heads.clear()


# How old the pretest tally may be before it is read again: the other processes' administrations arrive by then.
TALLY_MAX_AGE_SECONDS = 5.0


class PretestTally:
    """How often each pretest item has been given, as assembly balances their exposure: read from the database
    at most every `max_age_seconds`, and counted here as this process pins pretest items meanwhile.

    A read per module assembled cost more than the rest of the assembly's reads together; between two reads, the
    modules this process assembles still take turns over the pretest items, since each pinned one is counted at
    once (another process's are seen at the next read).
    """

    def __init__(self, max_age_seconds: float = TALLY_MAX_AGE_SECONDS) -> None:
        self._max_age = max_age_seconds
        self._counts: dict[str, int] = {}
        self._read_at: float | None = None

    async def current(self, read: Callable[[], Awaitable[dict[str, int]]]) -> dict[str, int]:
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self._max_age:
            self._counts = dict(await read())
            self._read_at = now
        return self._counts

    def count(self, item_ids: Iterable[str]) -> None:
        for item_id in item_ids:
            self._counts[item_id] = self._counts.get(item_id, 0) + 1


# Distinct pinned bodies kept to share: above the items and passages a day's modules draw on in a bank of a few
# thousand items, and at ~2 kB each at most ~16 MB however many modules are held.
MAX_SHARED_BODIES = 8_192


class SharedBodies:
    """One bytes object for each distinct pinned item or passage body among the modules this process assembles.

    Each assembly serializes its module's items and passages anew, and a room's modules pin mostly the same ones:
    the preparer holds up to two modules for every student sitting (a few tens of kilobytes each), so copies of the
    same bodies were most of what a room's prepared modules held. Full, it forgets the body used least recently;
    a body it no longer knows is only not shared, never wrong.
    """

    def __init__(self, limit: int = MAX_SHARED_BODIES) -> None:
        self._bodies: LRU[bytes, bytes] = LRU(limit)

    def shared(self, body: bytes) -> bytes:
        """The one object kept for these bytes (`body` itself the first time)."""
        found = self._bodies.get(body)
        if found is None:
            self._bodies.put(body, body)
            return body
        return found
