"""Time lost to an outage given back once, to the modules open during it, and never while a process is alive."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import insert, select

from session_service import writer
from session_service.domain.modules import now_ms
from session_service.domain.outages import Outage, may_be_alive, outage_before, still_beating
from session_service.domain.states import STATUS_EXPIRED, STATUS_OPEN
from session_service.heartbeat import Heartbeat
from session_service.storage import outages
from session_service.storage.engine import Database
from session_service.storage.models import ExamSession, Module, ServiceOutage, User
from session_service.workers import Workers

T0 = 1_800_000_000_000
GRACE_MS = 5_000
STALE_MS = 3_000


def test_outage_is_from_the_last_heartbeat_unless_someone_is_alive() -> None:
    silent = {"a": T0 - 9_000, "b": T0 - 4_000}
    assert outage_before(silent, silent, now_ms=T0) == Outage(T0 - 4_000, T0)
    # One was alive when this process looked, or one started since (it beat meanwhile).
    assert outage_before(None, silent, now_ms=T0) is None
    assert outage_before(silent, {**silent, "c": T0 - 10}, now_ms=T0) is None
    # A database the service never ran on has no outage to make up for.
    assert outage_before({}, {}, now_ms=T0) is None
    assert Outage(T0 - 4_000, T0).time_back_ms(GRACE_MS) == 9_000


def test_a_recent_heartbeat_is_watched_before_it_is_believed_dead() -> None:
    assert may_be_alive([T0 - 1_000], now_ms=T0, stale_ms=STALE_MS)
    assert not may_be_alive([T0 - 3_000], now_ms=T0, stale_ms=STALE_MS)
    assert still_beating({"a": T0}, {"a": T0 + 1_000})
    assert still_beating({}, {"b": T0})
    assert not still_beating({"a": T0}, {"a": T0})


def open_modules(db: Database, deadlines: dict[str, tuple[str, int]]) -> None:
    """One session with these modules: module id -> (status, deadline)."""
    with db.unit_of_work() as tx:
        tx.execute(
            insert(User).values(user_id="usr-1", username="s1", role="STUDENT", password_hash="x", create_ms=T0)
        )
        tx.execute(
            insert(ExamSession).values(
                session_id="ses-1",
                student_id="usr-1",
                scope="FULL",
                state="IN_PROGRESS",
                blueprint_version="v2",
                created_by="usr-1",
                create_ms=T0 - 600_000,
            )
        )
        for sequence, (module_id, (status, deadline_ms)) in enumerate(deadlines.items()):
            tx.execute(
                insert(Module).values(
                    module_id=module_id,
                    session_id="ses-1",
                    sequence=sequence,
                    plan_key="k",
                    section="READING",
                    stage="ROUTER",
                    status=status,
                    seed=1,
                    assembly_record=b"",
                    start_ms=T0 - 600_000,
                    deadline_ms=deadline_ms,
                )
            )


def deadlines(db: Database) -> dict[str, int]:
    with db.read_statement() as conn:
        return {
            module_id: deadline_ms
            for module_id, deadline_ms in conn.execute(select(Module.module_id, Module.deadline_ms))
        }


def test_two_processes_starting_together_give_the_time_back_once(db: Database) -> None:
    open_modules(
        db,
        {
            # Running when the service went down at T0 - 10 s, due during the outage: gets the time back.
            "mod-due-in-outage": (STATUS_OPEN, T0 - 8_000),
            "mod-later": (STATUS_OPEN, T0 + 60_000),
            # Already past its deadline before the outage (not yet swept), or closed: nothing to give back.
            "mod-late-before": (STATUS_OPEN, T0 - 12_000),
            "mod-expired": (STATUS_EXPIRED, T0 - 5_000),
        },
    )
    writer.heartbeat(db, process_id="proc-dead", now_ms=T0 - 10_000)
    # Both looked before either wrote its first heartbeat: each saw only the dead process's.
    seen = {"proc-dead": T0 - 10_000}
    first = writer.recover_lost_time(
        db, process_id="proc-a", now_ms=T0, seen=seen, stale_ms=STALE_MS, grace_ms=GRACE_MS
    )
    second = writer.recover_lost_time(
        db, process_id="proc-b", now_ms=T0 + 10, seen=seen, stale_ms=STALE_MS, grace_ms=GRACE_MS
    )
    assert first == (Outage(T0 - 10_000, T0), 15_000, 2)
    assert second is None
    assert deadlines(db) == {
        "mod-due-in-outage": T0 + 7_000,
        "mod-later": T0 + 75_000,
        "mod-late-before": T0 - 12_000,
        "mod-expired": T0 - 5_000,
    }
    with db.read_statement() as conn:
        assert conn.execute(select(ServiceOutage.modules)).scalars().all() == [2]
    # The dead process's heartbeat is gone; the two live ones are kept.
    assert set(outages.heartbeats(db, besides="")) == {"proc-a", "proc-b"}


def test_the_race_on_the_outage_record(db: Database) -> None:
    """Two processes whose transactions both read the heartbeats before either committed meet on the outage's key:
    the second records nothing and moves no deadline."""
    open_modules(db, {"mod-open": (STATUS_OPEN, T0 + 60_000)})
    outage = Outage(T0 - 10_000, T0)
    with db.unit_of_work() as tx:
        assert outages.claim(tx, outage, time_back_ms=15_000)
        assert outages.extend_open_modules(tx, outage, time_back_ms=15_000) == 1
    with db.unit_of_work() as tx:
        assert not outages.claim(tx, Outage(T0 - 10_000, T0 + 10), time_back_ms=15_010)
    assert deadlines(db) == {"mod-open": T0 + 75_000}


async def test_a_start_beside_a_live_process_gives_nothing_back(db: Database) -> None:
    open_modules(db, {"mod-open": (STATUS_OPEN, T0 + 60_000)})
    stop = threading.Event()

    def live_process() -> None:
        # Another process of the service on the same database, beating as Heartbeat does.
        while not stop.is_set():
            writer.heartbeat(db, process_id="proc-live", now_ms=now_ms())
            stop.wait(0.1)

    beating = threading.Thread(target=live_process)
    beating.start()
    workers = Workers(db)
    try:
        await asyncio.sleep(0.2)
        await Heartbeat(workers, interval_seconds=0.1, grace_seconds=5).recover()
    finally:
        stop.set()
        beating.join()
        workers.close()
    assert deadlines(db) == {"mod-open": T0 + 60_000}
    with db.read_statement() as conn:
        assert conn.execute(select(ServiceOutage)).all() == []


async def test_a_start_after_a_crash_moments_ago_gives_the_downtime_back(db: Database) -> None:
    now = now_ms()
    open_modules(db, {"mod-open": (STATUS_OPEN, now + 1_000)})
    # Killed 0.1 s ago: recent enough to be watched, then found silent.
    writer.heartbeat(db, process_id="proc-killed", now_ms=now - 100)
    workers = Workers(db)
    try:
        await Heartbeat(workers, interval_seconds=0.1, grace_seconds=5).recover()
    finally:
        workers.close()
    with db.read_statement() as conn:
        ((down_from_ms, up_ms, time_back_ms),) = conn.execute(
            select(ServiceOutage.down_from_ms, ServiceOutage.up_ms, ServiceOutage.time_back_ms)
        ).all()
    assert down_from_ms == now - 100
    # The watch (three beats) is part of the downtime.
    assert up_ms - down_from_ms >= 300
    assert time_back_ms == up_ms - down_from_ms + 5_000
    assert deadlines(db) == {"mod-open": now + 1_000 + time_back_ms}
