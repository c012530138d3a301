"""session_service: 200 concurrent students submitting answers over gRPC, beside a raw SQLite commit loop."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from bench.common import percentiles, raw_sqlite_commits
from launcher.procs import ServiceProcess, build_demo_bank, item_service_process, session_service_process
from toefl_core.auth import Role, auth_metadata, mint_token

TOKEN_KEY = "bench-token-key-for-the-session-benchmark-01"
STUDENTS = 200
ANSWERS_PER_STUDENT = 20
SETUP_CONCURRENCY = 20


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_services(workdir: Path, database_url: str | None = None) -> tuple[ServiceProcess, ServiceProcess]:
    """item_service on the demo bank, and session_service on `database_url` (by default a SQLite file)."""
    bank = build_demo_bank(workdir / "item_bank.db")
    items = item_service_process(workdir / "items", bank=bank, token_key=TOKEN_KEY).start()
    sessions = session_service_process(
        workdir / "sessions", item_address=items.address, token_key=TOKEN_KEY, database_url=database_url
    ).start()
    return items, sessions


async def prepare(
    stub: session_service_pb2_grpc.SessionServiceAsyncStub,
) -> list[tuple[str, str, str]]:
    """Students with an open Reading module: (token, session id, id of a multiple-choice item of the module)."""
    admin = auth_metadata(mint_token(TOKEN_KEY, subject="bench-admin", role=Role.ADMIN))
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(n: int) -> tuple[str, str, str]:
        async with gate:
            user = await stub.CreateUser(
                pb.CreateUserRequest(
                    user=pb.User(
                        username=f"bench-{n}-{uuid.uuid4().hex[:6]}", role=pb.ROLE_STUDENT, password="x" * 12
                    )
                ),
                metadata=admin,
            )
            token = mint_token(TOKEN_KEY, subject=user.user_id, role=Role.STUDENT)
            session = await stub.CreateSession(
                pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING),
                metadata=auth_metadata(token),
            )
            # Complete the Words takes letters; a multiple-choice item takes a choice index.
            choice = next(i.item_id for i in session.current_module.items if i.content.options)
            return token, session.session_id, choice

    prepared = await asyncio.gather(*(one(n) for n in range(STUDENTS)))
    return list(prepared)


async def run_students(
    stub: session_service_pb2_grpc.SessionServiceAsyncStub, students: list[tuple[str, str, str]]
) -> tuple[list[float], float]:
    latencies: list[float] = []
    barrier = asyncio.Event()

    async def student(token: str, session_id: str, item_id: str) -> None:
        md = auth_metadata(token)
        await barrier.wait()
        for n in range(ANSWERS_PER_STUDENT):
            # Changing the answer to one Read-in-Daily-Life or academic item: every call is a new revision.
            request = pb.SubmitResponseRequest(
                session_id=session_id,
                item_id=item_id,
                answer=pb.Answer(choice_index=n % 2),
                request_id=uuid.uuid4().hex,
            )
            start = time.perf_counter()
            await stub.SubmitResponse(request, metadata=md)
            latencies.append((time.perf_counter() - start) * 1000)

    tasks = [asyncio.create_task(student(token, sid, item)) for token, sid, item in students]
    await asyncio.sleep(0.1)
    start = time.perf_counter()
    barrier.set()
    await asyncio.gather(*tasks)
    return latencies, time.perf_counter() - start


async def measure(address: str) -> tuple[list[float], float]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub: session_service_pb2_grpc.SessionServiceAsyncStub = session_service_pb2_grpc.SessionServiceStub(
            channel
        )
        return await run_students(stub, await prepare(stub))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="session-bench-") as tmp:
        workdir = Path(tmp)
        items, sessions = start_services(workdir)
        try:
            latencies, elapsed = asyncio.run(measure(sessions.address))
            assert sessions.proc is not None
            rss = vm_rss_mb(sessions.proc.pid)
        finally:
            sessions.terminate()
            items.terminate()
        raw = raw_sqlite_commits(workdir / "raw.db")
    total = STUDENTS * ANSWERS_PER_STUDENT
    rate = total / elapsed
    p50, p99 = percentiles(latencies)
    out = sys.stdout.write
    out(f"SubmitResponse: {STUDENTS} concurrent students x {ANSWERS_PER_STUDENT} answers (grpc.aio; WAL, FULL)\n")
    out(f"  acknowledged answers/s   {rate:9.1f}\n")
    out(f"  latency p50 / p99        {p50:9.2f} ms / {p99:.2f} ms\n")
    out(f"  raw SQLite commits/s     {raw:9.1f}   (one INSERT per transaction, same pragmas, same run)\n")
    out(f"  service / raw            {rate / raw:9.2f}\n")
    out(f"  session_service VmRSS    {rss:9.1f} MB   (target <= 150 MB)\n")


if __name__ == "__main__":
    main()
