"""Helpers of the benchmarks: reference loads and what a process costs (the processes: launcher/)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import time
import uuid
from pathlib import Path

from aiohttp import web

from toefl_core.process import keep_out_of_full_collections

RAW_COMMITS = 2000


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of `samples` (any unit), nearest-rank."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def settle_generator() -> None:
    """Keep what the load generator has built so far (students, their sessions and modules) out of its full
    collections, and those seldom, as the services do: with 5,000 students seated, one full collection stalled the
    generator for ~270 ms, and that stall counted in the latency of every request in flight; with 10,000 over a
    240-s window, three full collections of 151-377 ms came on their own (2026-12-06)."""
    keep_out_of_full_collections()


class LoopLag:
    """How late the generator's own event loop wakes up, sampled every 5 ms while a row is measured: any stall of
    the generator counts in every latency it records, so each row shows it beside its figures."""

    PERIOD = 0.005

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.PERIOD)
            self.lags_ms.append((time.perf_counter() - started - self.PERIOD) * 1e3)

    def start(self) -> LoopLag:
        self._task = asyncio.create_task(self._sample())
        return self

    def stop(self) -> dict[str, float | None]:
        """p99 and max of the lags seen, in ms."""
        if self._task is not None:
            self._task.cancel()
        if not self.lags_ms:
            return {"p99_ms": None, "max_ms": None}
        return {"p99_ms": percentiles(self.lags_ms)[1], "max_ms": max(self.lags_ms)}


def proc_status_mb(pid: int, key: str) -> float:
    """A memory line of /proc/<pid>/status in MB: VmRSS (now) or VmHWM (peak resident)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory_mb(pids: dict[str, int]) -> dict[str, float]:
    """Each process's peak resident memory so far (VmHWM), by name."""
    return {name: proc_status_mb(pid, "VmHWM") for name, pid in pids.items()}


def megabytes(memory: dict[str, float]) -> str:
    """The figures as one line: `name 12.3 MB, ...`."""
    return ", ".join(f"{name} {mb:.1f} MB" for name, mb in memory.items())


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def plain_server(port_file: str) -> None:
    """A JSON handler with no gRPC behind it: the floor of aiohttp server + client on this machine."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"itemId": request.match_info["item_id"], "ok": True})

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/api/items/{item_id}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        await asyncio.to_thread(Path(port_file).write_text, str(runner.addresses[0][1]))
        await asyncio.Event().wait()

    asyncio.run(serve())


def raw_sqlite_commits(path: Path, commits: int = RAW_COMMITS) -> float:
    """Commits per second of one INSERT per transaction, WAL and synchronous=FULL as session_service runs."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE responses (id INTEGER PRIMARY KEY, session_id TEXT, item_id TEXT, revision INTEGER,"
        " answer_json TEXT, request_id TEXT UNIQUE, saved_ms INTEGER)"
    )
    start = time.perf_counter()
    for n in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO responses (session_id, item_id, revision, answer_json, request_id, saved_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ("ses-bench", f"itm-{n % 20}", n, '{"choiceIndex": 1}', uuid.uuid4().hex, int(time.time() * 1000)),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return commits / elapsed
