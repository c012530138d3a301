"""Storage of the service's heartbeats and outages, and the deadlines an outage moves, on the Core connection."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, delete, select, update

from session_service.domain.outages import Outage
from session_service.domain.states import STATUS_OPEN
from session_service.storage.engine import Database, Tx, Upsert
from session_service.storage.models import Module, ServiceHeartbeat, ServiceOutage


def signs_of_life(connection: Connection, *, besides: str) -> dict[str, int]:
    """process id -> its last heartbeat, of every process of the service but `besides`."""
    others = ServiceHeartbeat.process_id != besides
    rows = connection.execute(select(ServiceHeartbeat.process_id, ServiceHeartbeat.alive_ms).where(others))
    return {process_id: alive_ms for process_id, alive_ms in rows}


_BEAT = Upsert.replacing(ServiceHeartbeat, key="process_id")
# An outage is recorded once, by the first of the processes starting together.
_CLAIM = Upsert(
    lambda insert: (
        insert(ServiceOutage)
        .on_conflict_do_nothing(index_elements=["down_from_ms"])
        .returning(ServiceOutage.up_ms)
    )
)


def beat(tx: Tx, *, process_id: str, now_ms: int) -> None:
    tx.execute(_BEAT(tx), {"process_id": process_id, "alive_ms": now_ms})


def forget(tx: Tx, process_ids: Collection[str]) -> None:
    """Drop the heartbeats of processes that stopped or died."""
    if process_ids:
        tx.execute(delete(ServiceHeartbeat).where(ServiceHeartbeat.process_id.in_(process_ids)))


def claim(tx: Tx, outage: Outage, *, time_back_ms: int) -> bool:
    """Record the outage; False when another process starting at the same time recorded it first."""
    row = {"down_from_ms": outage.down_from_ms, "up_ms": outage.up_ms, "time_back_ms": time_back_ms, "modules": 0}
    return tx.execute(_CLAIM(tx), row).first() is not None


def extend_open_modules(tx: Tx, outage: Outage, *, time_back_ms: int) -> int:
    """Move the deadline of every module still open whose clock was running when the service went down (its
    deadline lay after the last sign of life); returns how many moved."""
    moved = tx.execute(
        update(Module)
        .where(Module.status == STATUS_OPEN, Module.deadline_ms > outage.down_from_ms)
        .values(deadline_ms=Module.deadline_ms + time_back_ms)
    ).rowcount
    tx.execute(
        update(ServiceOutage).where(ServiceOutage.down_from_ms == outage.down_from_ms).values(modules=moved)
    )
    return moved


def heartbeats(db: Database, *, besides: str) -> dict[str, int]:
    """The heartbeats of the other processes, read outside any write (start-up watches them change)."""
    with db.read_statement() as connection:
        return signs_of_life(connection, besides=besides)
