"""session_service's CPU per request kind of a full test, sent one at a time, beside a bare health check; on SQLite
or (--postgres) on a throwaway PostgreSQL cluster, whose server CPU is counted apart."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from toefl.item.v1 import item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2_grpc

from bench.common import cpu_seconds_of
from bench.scoring_bench import take_full_test
from bench.session_bench import start_services
from launcher.postgres import PostgresCluster, start_cluster

STUDENTS = 30
HEALTH_CHECKS = 3000
T = TypeVar("T")


class Costs:
    """CPU seconds of session_service, item_service and the database server (none for SQLite, which runs inside
    session_service), and wall seconds, summed per request kind."""

    def __init__(self, session_pid: int, item_pid: int, database: PostgresCluster | None = None) -> None:
        self._pids = (session_pid, item_pid)
        # The postmaster lives as long as the cluster: its pid is read once, its children at each call.
        self._postmaster = None if database is None else postmaster_pid(database)
        self.session: dict[str, float] = collections.defaultdict(float)
        self.item: dict[str, float] = collections.defaultdict(float)
        self.db: dict[str, float] = collections.defaultdict(float)
        self.wall: dict[str, float] = collections.defaultdict(float)
        self.count: collections.Counter[str] = collections.Counter()

    def _db_seconds(self) -> float:
        return 0.0 if self._postmaster is None else server_cpu_seconds(self._postmaster)

    async def timed(self, kind: str, call: Awaitable[T]) -> T:
        # /proc counts CPU in clock ticks (10 ms): one call is below a tick, so only sums over many calls are read.
        session_before, item_before = (cpu_seconds_of(p) for p in self._pids)
        db_before = self._db_seconds()
        start = time.perf_counter()
        reply = await call
        self.wall[kind] += time.perf_counter() - start
        session_after, item_after = (cpu_seconds_of(p) for p in self._pids)
        self.session[kind] += session_after - session_before
        self.item[kind] += item_after - item_before
        self.db[kind] += self._db_seconds() - db_before
        self.count[kind] += 1
        return reply


def postmaster_pid(cluster: PostgresCluster) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().split()[0])


def server_cpu_seconds(postmaster: int) -> float:
    """CPU seconds of a postmaster and its children alive now (a backend per pooled connection)."""
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    total = cpu_seconds_of(postmaster)
    for pid in children:
        # A child (autovacuum, a checkpoint) may end between the two reads.
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_seconds_of(int(pid))
    return total


async def measure(session_address: str, item_address: str, costs: Costs) -> None:
    async with (
        grpc.aio.insecure_channel(session_address) as channel,
        grpc.aio.insecure_channel(item_address) as item_channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(HEALTH_CHECKS):
            await costs.timed("ref: bare health check", health.Check(health_pb2.HealthCheckRequest()))
        sessions = session_service_pb2_grpc.SessionServiceStub(channel)
        items = item_service_pb2_grpc.ItemServiceStub(item_channel)
        for n in range(STUDENTS):
            await take_full_test(sessions, items, n, prefix="rc", timed=costs.timed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.request_cost_bench", description=__doc__)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="keep the student data on a throwaway PostgreSQL cluster (its server's CPU in the column db ms)",
    )
    args = parser.parse_args(argv if argv is not None else [])
    database = start_cluster() if args.postgres else None
    try:
        with tempfile.TemporaryDirectory(prefix="request-cost-bench-") as tmp:
            items, sessions = start_services(Path(tmp), database.url if database is not None else None)
            try:
                assert sessions.proc is not None and items.proc is not None
                costs = Costs(sessions.proc.pid, items.proc.pid, database)
                asyncio.run(measure(sessions.address, items.address, costs))
            finally:
                sessions.terminate()
                items.terminate()
    finally:
        if database is not None:
            database.stop()
    out = sys.stdout.write
    store = "PostgreSQL" if database is not None else "SQLite"
    out(
        f"session_service CPU per request on {store}, one request at a time ({STUDENTS} full tests, every item "
        "answered)\n"
    )
    out(f"  {'request':<24} {'count':>6} {'session ms':>11} {'db ms':>6} {'item ms':>8} {'wall ms':>8}")
    out(f" {'x bare':>7}\n")
    bare = costs.session["ref: bare health check"] / costs.count["ref: bare health check"]
    per_student = 0.0
    for kind, count in costs.count.items():
        cpu = costs.session[kind] / count
        ratio = f"{cpu / bare:7.1f}" if bare > 0 else f"{'-':>7}"
        out(
            f"  {kind:<24} {count:6d} {1000 * cpu:11.2f} {1000 * costs.db[kind] / count:6.2f} "
            f"{1000 * costs.item[kind] / count:8.2f} "
            f"{1000 * costs.wall[kind] / count:8.2f} {ratio}\n"
        )
        if not kind.startswith("ref:"):
            per_student += costs.session[kind] / STUDENTS
    answers = costs.count["answer"] / STUDENTS
    out(
        f"  per full test: {1000 * per_student:.0f} ms of session_service CPU for {answers:.0f} answers, "
        f"{1000 * (per_student - costs.session['answer'] / STUDENTS):.0f} ms of it outside the answers\n"
    )
    if database is not None:
        db_per_student = sum(v for k, v in costs.db.items() if not k.startswith("ref:")) / STUDENTS
        out(f"  and {1000 * db_per_student:.0f} ms of the PostgreSQL server's CPU\n")
    out(
        "  one at a time, each answer is its own commit; under load answers share group commits and cost less,\n"
        "  while a create, an advance and a finish cost about the same (CPU from /proc, summed over the calls)\n"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
