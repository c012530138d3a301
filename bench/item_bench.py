"""item_service: BatchGetItems(50), AssembleModule and a ListItems walk in-process, and the server's memory."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc

from bench.common import percentiles
from item_service.servicer import ItemServicer
from item_service.storage import ItemBank, create_bank_engine
from launcher.procs import build_demo_bank, item_service_process
from toefl_core.auth import Role, auth_metadata, mint_token

TOKEN_KEY = "bench-token-key-for-the-item-benchmark-000001"
CALLS = 2000
WALKS = 30
SEED = 2026
TC = item_service_pb2.TaskCount
READING_MODULE = item_service_pb2.ModuleSpec(
    section=item_pb2.SECTION_READING,
    task_counts=[
        TC(task_type=item_pb2.TASK_TYPE_COMPLETE_THE_WORDS, count=1),
        TC(task_type=item_pb2.TASK_TYPE_READ_IN_DAILY_LIFE, count=5),
        TC(task_type=item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE, count=5),
    ],
    difficulty_target=0.3,
)


class Context:
    """What the servicer reads of a grpc.aio context: the caller's metadata."""

    def __init__(self, role: Role) -> None:
        self._metadata = auth_metadata(mint_token(TOKEN_KEY, subject="bench", role=role))

    def invocation_metadata(self) -> Any:
        return self._metadata


def timed(fn: Callable[[], object], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def timed_async(fn: Callable[[], Awaitable[object]], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def row(name: str, value: float, reference: float, reference_name: str, target: str) -> None:
    sys.stdout.write(
        f"{name:<34} {value:9.3f} ms   ref {reference:8.3f} ms ({reference_name})   x{value / reference:6.1f}"
        f"   target {target}\n"
    )


async def in_process(bank_path: Path) -> None:
    engine = create_bank_engine(f"sqlite:///{bank_path}", read_only=True)
    bank = ItemBank(engine, read_only=True)
    servicer = ItemServicer(bank, token_key=TOKEN_KEY)
    # A teacher reads the bank in the STUDENT view (students do not read the bank at all).
    teacher, service = Context(Role.TEACHER), Context(Role.SERVICE)
    raw = sqlite3.connect(f"file:{bank_path}?mode=ro", uri=True)
    ids = [r[0] for r in raw.execute("SELECT item_id FROM test_items")]
    active = [r[0] for r in raw.execute("SELECT item_id FROM test_items WHERE status = 'ITEM_STATUS_ACTIVE'")]
    rng = random.Random(SEED)

    def batch_request() -> item_service_pb2.BatchGetItemsRequest:
        return item_service_pb2.BatchGetItemsRequest(
            items=[item_service_pb2.ItemRef(item_id=i) for i in rng.sample(ids, 50)]
        )

    async def batch_get() -> object:
        return await servicer.BatchGetItems(batch_request(), teacher)  # type: ignore[arg-type]

    def raw_batch() -> object:
        chosen = rng.sample(ids, 50)
        marks = ",".join("?" * len(chosen))
        return raw.execute(f"SELECT * FROM test_items WHERE item_id IN ({marks})", chosen).fetchall()

    async def assemble() -> object:
        request = item_service_pb2.AssembleModuleRequest(
            spec=READING_MODULE, seed=rng.randrange(1 << 30), exclude_item_ids=rng.sample(active, 40)
        )
        return await servicer.AssembleModule(request, service)  # type: ignore[arg-type]

    def raw_assembly_read() -> object:
        # What an uncached assembly would read at least: the IRT parameters of the candidate items.
        types = [item_pb2.TaskType.Name(tc.task_type) for tc in READING_MODULE.task_counts]
        rows = raw.execute(
            "SELECT item_id, passage_id, irt FROM test_items WHERE status = 'ITEM_STATUS_ACTIVE' "
            "AND task_type IN (?, ?, ?)",
            types,
        ).fetchall()
        return [json.loads(r[2]) for r in rows]

    async def walk() -> object:
        request = item_service_pb2.ListItemsRequest()
        while True:
            reply = await servicer.ListItems(request, teacher)  # type: ignore[arg-type]
            if not reply.next_page_token:
                return reply
            request.page_token = reply.next_page_token

    def raw_walk() -> object:
        return raw.execute("SELECT * FROM test_items ORDER BY item_id").fetchall()

    for _ in range(200):
        await batch_get()
        await assemble()
        raw_batch()
        raw_assembly_read()
    batch_p50, batch_p99 = percentiles(await timed_async(batch_get, CALLS))
    raw_p50, raw_p99 = percentiles(timed(raw_batch, CALLS))
    asm_p50, asm_p99 = percentiles(await timed_async(assemble, CALLS))
    ref_p50, ref_p99 = percentiles(timed(raw_assembly_read, CALLS))
    walk_p50, _ = percentiles(await timed_async(walk, WALKS))
    raw_walk_p50, _ = percentiles(timed(raw_walk, WALKS))
    raw.close()
    bank.dispose()
    sys.stdout.write(f"in-process on the demo bank ({len(ids)} items, {len(active)} active), {CALLS} calls each\n")
    row("BatchGetItems(50) p50", batch_p50, raw_p50, "sqlite3 SELECT 50 rows by key", "-")
    row("BatchGetItems(50) p99", batch_p99, raw_p99, "sqlite3 SELECT 50 rows by key", "<= 5 ms")
    row("AssembleModule (reading, 11) p50", asm_p50, ref_p50, "sqlite3 SELECT candidates' IRT", "-")
    row("AssembleModule (reading, 11) p99", asm_p99, ref_p99, "sqlite3 SELECT candidates' IRT", "<= 5 ms")
    row("ListItems full walk (100/page)", walk_p50, raw_walk_p50, "sqlite3 SELECT all rows", "<= 100 ms")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


BASELINE = (
    "import grpc, numpy, sqlalchemy, google.protobuf, pathlib, sys;"
    "from toefl.item.v1 import item_service_pb2_grpc;"
    "print(next(l.split()[1] for l in pathlib.Path('/proc/self/status').read_text().splitlines()"
    " if l.startswith('VmRSS:')))"
)


def server_memory(bank_path: Path, workdir: Path) -> None:
    proc = item_service_process(workdir, bank=bank_path, token_key=TOKEN_KEY).start()
    try:
        with grpc.insecure_channel(proc.address) as channel:
            stub = item_service_pb2_grpc.ItemServiceStub(channel)
            teacher = auth_metadata(mint_token(TOKEN_KEY, subject="bench", role=Role.TEACHER))
            service = auth_metadata(mint_token(TOKEN_KEY, subject="bench", role=Role.SERVICE))
            request = item_service_pb2.ListItemsRequest(page_size=1000)
            ids: list[str] = []
            while True:
                reply = stub.ListItems(request, metadata=teacher)
                ids.extend(i.item_id for i in reply.items)
                if not reply.next_page_token:
                    break
                request.page_token = reply.next_page_token
            rng = random.Random(SEED)
            for seed in range(300):
                stub.BatchGetItems(
                    item_service_pb2.BatchGetItemsRequest(
                        items=[item_service_pb2.ItemRef(item_id=i) for i in rng.sample(ids, 50)]
                    ),
                    metadata=teacher,
                )
                stub.AssembleModule(
                    item_service_pb2.AssembleModuleRequest(spec=READING_MODULE, seed=seed), metadata=service
                )
        assert proc.proc is not None
        served = rss_kib(proc.proc.pid) / 1024
    finally:
        proc.terminate()
    baseline = (
        int(subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True, check=True).stdout)
        / 1024
    )
    sys.stdout.write(
        f"{'item_service resident memory':<34} {served:9.1f} MB   ref {baseline:8.1f} MB (python importing grpc, "
        f"numpy, sqlalchemy)   x{served / baseline:6.1f}   target <= 120 MB\n"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="item-bench-") as tmp:
        workdir = Path(tmp)
        bank_path = build_demo_bank(workdir / "item_bank.db", seed=SEED)
        asyncio.run(in_process(bank_path))
        server_memory(bank_path, workdir / "served")


if __name__ == "__main__":
    main()
