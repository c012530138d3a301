"""What the fault tests check after a crash: every acknowledged answer stored once, at its revision."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from launcher.stack import Stack
from tests.support.exam import UNTIL_STOPPED, Attempt, Student, answer_stream, retry


def stored(database: Path) -> dict[str, tuple[int, int]]:
    """request id -> (rows with that id, revision), read through a read-only connection beside the service."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT request_id, revision FROM responses").fetchall()
    finally:
        conn.close()
    counts = Counter(request_id for request_id, _ in rows)
    return {request_id: (counts[request_id], revision) for request_id, revision in rows}


def check_exactly_once(attempts: list[Attempt], database: Path) -> dict[str, int]:
    """Every acknowledged answer is stored once, at the revision its acknowledgement named; returns counts."""
    held = stored(database)
    acknowledged = [a for a in attempts if a.acknowledged]
    missing = [a.request_id for a in acknowledged if a.request_id not in held]
    assert missing == [], f"{len(missing)} acknowledged answers are not in the database"
    duplicated = sorted(rid for rid, (count, _) in held.items() if count != 1)
    assert duplicated == [], f"request ids stored more than once: {duplicated[:5]}"
    wrong = [a.request_id for a in acknowledged if held[a.request_id][1] != a.reply["response"]["revision"]]
    assert wrong == [], f"stored at another revision than acknowledged: {wrong[:5]}"
    return {"acknowledged": len(acknowledged), "lost": len(missing), "duplicated": len(duplicated)}


# What a client may see when a process dies under its request: no answer, or the gateway's 502/503.
CRASH_STATUSES = {None, 502, 503}


async def fault_round(
    stack: Stack,
    students: list[Student],
    fault_after: float,
    fault: Callable[[], None],
    recover: Callable[[], None],
) -> dict[str, int]:
    """Students answer until `fault` strikes after `fault_after` s; after `recover`, unanswered ones are retried.

    Checks: every acknowledged answer is stored once at its acknowledged revision; a retry of an unacknowledged
    request is reported as replayed exactly when the crashed process had committed it, and then nothing is
    written twice.
    """
    assert stack.gateway is not None
    base = stack.gateway.url
    stop = asyncio.Event()
    # Bounded by the fault, not by a count: however fast the machine, answers are in flight when it strikes.
    baseline = len(stored(stack.user_db))
    stream = asyncio.create_task(answer_stream(lambda: base, students, UNTIL_STOPPED, stop))
    # The kill point counts from the first answer on disk, not from the start: on a loaded machine the students
    # may need longer than `fault_after` to send their first answers, and a fault before that tests nothing.
    for _ in range(1200):  # at most about a minute
        if len(stored(stack.user_db)) > baseline:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(fault_after)
    fault()
    stop.set()
    attempts = await stream
    await asyncio.to_thread(recover)

    before = stored(stack.user_db)
    counts = check_exactly_once(attempts, stack.user_db)
    unacknowledged = [a for a in attempts if not a.acknowledged]
    assert counts["acknowledged"] > 0 and unacknowledged, "the fault must strike while answers are in flight"
    assert {a.status for a in unacknowledged} <= CRASH_STATUSES, {a.status for a in unacknowledged}
    committed_unacknowledged = sum(a.request_id in before for a in unacknowledged)

    await retry(stack.gateway.url, unacknowledged)
    assert [a.reply for a in unacknowledged if not a.acknowledged] == []
    misreported = [a.request_id for a in unacknowledged if a.reply["replayed"] != (a.request_id in before)]
    assert misreported == []
    after = check_exactly_once(attempts, stack.user_db)
    assert after["acknowledged"] == len(attempts)
    return {**counts, "unacknowledged": len(unacknowledged), "committed_unacknowledged": committed_unacknowledged}
