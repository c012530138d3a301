"""The pretest tally kept between assemblies: read again only when old, this process's pins counted at once;
the session heads forget the stalest when full; assembled modules share one copy of each pinned body."""

from __future__ import annotations

import asyncio

from session_service.caches import PretestTally, SessionHeads, SharedBodies
from session_service.domain.answers import SessionHead


def test_the_tally_is_read_when_old_and_counts_its_own_pins() -> None:
    stored = {"itm-a": 3, "itm-b": 1}
    reads: list[dict[str, int]] = []

    async def read() -> dict[str, int]:
        reads.append(dict(stored))
        return dict(stored)

    async def scenario() -> None:
        tally = PretestTally(max_age_seconds=0.2)
        assert await tally.current(read) == {"itm-a": 3, "itm-b": 1}
        # Two modules assembled here pin itm-b, then a new item: the next assembly sees them without a read.
        tally.count(["itm-b"])
        tally.count(["itm-b", "itm-c"])
        assert await tally.current(read) == {"itm-a": 3, "itm-b": 3, "itm-c": 1}
        assert len(reads) == 1
        # Once old, the database's figures (every process's administrations) replace this process's.
        stored.update({"itm-a": 9, "itm-b": 4, "itm-c": 2})
        await asyncio.sleep(0.25)
        assert await tally.current(read) == {"itm-a": 9, "itm-b": 4, "itm-c": 2}
        assert len(reads) == 2

    asyncio.run(scenario())


def head(session_id: str) -> SessionHead:
    return SessionHead(
        session_id=session_id,
        student_id="usr-1",
        state="IN_PROGRESS",
        module_id="mod-1",
        module_sequence=1,
        module_status="OPEN",
        deadline_ms=0,
    )


def test_a_full_heads_cache_forgets_the_head_used_least_recently() -> None:
    heads = SessionHeads(limit=3)
    for session_id in ("ses-a", "ses-b", "ses-c"):
        heads.put(head(session_id))
    assert heads.get("ses-a") is not None
    heads.put(head("ses-d"))
    # Not all of them (a full cache once made every student's next answer a read): only ses-b, the stalest.
    assert [s in heads for s in ("ses-a", "ses-b", "ses-c", "ses-d")] == [True, False, True, True]


def test_equal_bodies_are_one_object_and_a_full_table_forgets_the_least_used() -> None:
    def serialized(name: str) -> bytes:
        """A body as each assembly makes it: equal bytes, a new object each time."""
        return bytes(bytearray(name.encode() + bytes(2000)))

    bodies = SharedBodies(limit=2)
    a = serialized("item-a")
    assert serialized("item-a") == a and serialized("item-a") is not a
    assert bodies.shared(a) is a
    assert bodies.shared(serialized("item-a")) is a
    b = bodies.shared(serialized("item-b"))
    # item-a used more recently than item-b: a third body forgets item-b, not item-a.
    assert bodies.shared(serialized("item-a")) is a
    bodies.shared(serialized("item-c"))
    assert bodies.shared(serialized("item-a")) is a
    b_again = serialized("item-b")
    assert bodies.shared(b_again) is b_again and b_again is not b
