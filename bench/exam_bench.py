"""The whole stack under load: reference rows, GET and PUT through the gateway, and N students sitting an exam."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import resource
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from bench.common import (
    ADAPTIVE,
    Stack,
    answer_for,
    build_demo_bank,
    cpu_seconds_of,
    objective,
    percentiles,
    plain_server,
    proc_status_mb,
    raw_sqlite_commits,
    wait_port,
)
from tests.support.procs import REPO_ROOT
from toefl_core.auth import Role, auth_metadata, mint_token

TOKEN_KEY = "bench-token-key-for-the-exam-benchmark-000001"
DEFAULT_STUDENTS = 500
CONCURRENCY = 64
REQUESTS = 4000
WARMUP = 200
SETUP_CONCURRENCY = 16
PASSWORD = "bench password 2026"
# The benchmark stops by itself: an exam not finished within this bound counts its students as errors.
EXAM_TIME_LIMIT_SECONDS = 150.0
TARGET_ANSWERS_PER_SECOND = 1000.0
TARGET_P99_MS = 200.0
TARGET_RSS_MB = 150.0


@dataclass
class Row:
    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    reference: str = ""
    ratio: float | None = None
    generator_cpu: float = float("nan")

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Tally:
    """Latencies in ms and error messages of one kind of request."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load(name: str, one: Callable[[], Awaitable[None]], reference: Row | None = None) -> Row:
    """REQUESTS calls of `one` from CONCURRENCY workers, after a warm-up; errors counted, not raised."""
    for _ in range(WARMUP):
        await one()
    tally = Tally()
    remaining = REQUESTS

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                await one()
            except (aiohttp.ClientError, grpc.RpcError, RuntimeError) as exc:
                tally.errors.append(str(exc)[:200])
            tally.latencies.append((time.perf_counter() - started) * 1e3)

    cpu, started = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return finish_row(name, tally, time.perf_counter() - started, cpu_seconds() - cpu, reference)


def finish_row(name: str, tally: Tally, seconds: float, cpu: float, reference: Row | None) -> Row:
    p50, p99 = percentiles(tally.latencies) if tally.latencies else (float("nan"), float("nan"))
    row = Row(name, len(tally.latencies) - len(tally.errors), len(tally.errors), seconds, p50, p99)
    row.generator_cpu = cpu / seconds if seconds else float("nan")
    if reference is not None:
        row.reference, row.ratio = reference.name, row.rps / reference.rps
    return row


def raw_sqlite_row(path: Path) -> Row:
    cpu, started = cpu_seconds(), time.perf_counter()
    rate = raw_sqlite_commits(path)
    seconds = time.perf_counter() - started
    mean_ms = 1e3 / rate
    row = Row("ref: raw SQLite commit loop (WAL, FULL)", round(rate * seconds), 0, seconds, mean_ms, mean_ms)
    row.generator_cpu = (cpu_seconds() - cpu) / seconds
    return row


class Http:
    """JSON over one aiohttp session; a non-2xx answer raises RuntimeError with the status and body."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session

    async def call(self, method: str, path: str, token: str = "", body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.base + path, json=body, headers=headers) as response:
            data = await response.read()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path.split('?')[0]}: HTTP {response.status} {data[:160]!r}")
            return json.loads(data)


async def create_students(address: str, count: int, prefix: str) -> list[str]:
    """Student accounts made by an admin (a token minted with the service's key) through CreateUser."""
    admin = auth_metadata(mint_token(TOKEN_KEY, subject="bench-admin", role=Role.ADMIN))
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)

        async def one(n: int) -> str:
            username = f"{prefix}-{n}"
            async with gate:
                await stub.CreateUser(
                    pb.CreateUserRequest(user=pb.User(username=username, role=pb.ROLE_STUDENT, password=PASSWORD)),
                    metadata=admin,
                )
            return username

        return list(await asyncio.gather(*(one(n) for n in range(count))))


async def sit_exam(http: Http, username: str, tallies: dict[str, Tally]) -> int:
    """One student: log in, start a full test, answer Reading, Listening and Writing's objective items, finish."""

    async def timed(kind: str, method: str, path: str, token: str = "", body: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return await http.call(method, path, token, body)
        except (aiohttp.ClientError, RuntimeError) as exc:
            tallies[kind].errors.append(str(exc)[:200])
            raise
        finally:
            tallies[kind].latencies.append((time.perf_counter() - started) * 1e3)

    login = await timed("login", "POST", "/api/auth/token", body={"username": username, "password": PASSWORD})
    token = login["accessToken"]
    create = {"scope": "SESSION_SCOPE_FULL_TEST", "requestId": uuid.uuid4().hex}
    session = await timed("create session", "POST", "/api/sessions", token, create)
    sid = session["sessionId"]
    answered = 0
    while session.get("currentModule", {}).get("section") in (*ADAPTIVE, "SECTION_WRITING"):
        module = session["currentModule"]
        for item in module["items"]:
            if objective(module, item):
                body = {"answer": answer_for(item), "requestId": uuid.uuid4().hex, "elapsedMs": 1000}
                await timed("answer", "PUT", f"/api/sessions/{sid}/responses/{item['itemId']}", token, body)
                answered += 1
        session = await timed(
            "advance", "POST", f"/api/sessions/{sid}:advance", token, {"requestId": uuid.uuid4().hex}
        )
    await timed("finish", "POST", f"/api/sessions/{sid}:finish", token, {})
    return answered


async def exam_rows(
    http: Http, usernames: list[str], put_reference: Row, pids: dict[str, int]
) -> tuple[list[Row], dict[str, Any]]:
    kinds = ("login", "create session", "answer", "advance", "finish")
    tallies = {kind: Tally() for kind in kinds}
    service_cpu = {name: cpu_seconds_of(pid) for name, pid in pids.items()}
    cpu, started = cpu_seconds(), time.perf_counter()
    tasks = [asyncio.create_task(sit_exam(http, name, tallies)) for name in usernames]
    done, pending = await asyncio.wait(tasks, timeout=EXAM_TIME_LIMIT_SECONDS)
    for task in pending:
        task.cancel()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    service_share = {name: (cpu_seconds_of(pid) - service_cpu[name]) / seconds for name, pid in pids.items()}
    failed = [t for t in done if t.exception() is not None]
    finished = len(done) - len(failed)
    all_requests = Tally(
        [ms for t in tallies.values() for ms in t.latencies], [e for t in tallies.values() for e in t.errors]
    )
    rows = [
        finish_row(
            f"exam x{len(usernames)}: answers acknowledged", tallies["answer"], seconds, cpu, put_reference
        ),
        finish_row(f"exam x{len(usernames)}: all requests", all_requests, seconds, cpu, None),
    ]
    summary = {
        "students": len(usernames),
        "finished": finished,
        "failed": len(failed),
        "timed_out": len(pending),
        "answers_acknowledged": rows[0].requests,
        "seconds": seconds,
        "cpu_share": {"load generator": cpu / seconds, **service_share},
        "by_kind": {
            kind: {
                "requests": len(t.latencies),
                "errors": len(t.errors),
                "p50_ms": percentiles(t.latencies)[0] if t.latencies else None,
                "p99_ms": percentiles(t.latencies)[1] if t.latencies else None,
            }
            for kind, t in tallies.items()
        },
        "error_samples": sorted({e for t in tallies.values() for e in t.errors})[:10],
    }
    return rows, summary


async def put_targets(http: Http, usernames: list[str]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Per student: token, session id, a multiple-choice item of the open Reading module, and an answer to it."""
    targets = []
    for username in usernames:
        login = await http.call("POST", "/api/auth/token", body={"username": username, "password": PASSWORD})
        create = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_READING", "requestId": uuid.uuid4().hex}
        session = await http.call("POST", "/api/sessions", login["accessToken"], create)
        item = next(i for i in session["currentModule"]["items"] if i["content"].get("options"))
        targets.append((login["accessToken"], session["sessionId"], item["itemId"], answer_for(item)))
    return targets


async def measure(stack: Stack, plain_port: int, students: int) -> tuple[list[Row], dict[str, Any]]:
    assert stack.item is not None and stack.session is not None and stack.gateway is not None
    rows = [raw_sqlite_row(stack.workdir / "raw.db")]
    student_md = auth_metadata(mint_token(TOKEN_KEY, subject="bench", role=Role.STUDENT, ttl_seconds=7200))
    async with grpc.aio.insecure_channel(stack.item.address) as channel:
        stub = item_service_pb2_grpc.ItemServiceStub(channel)
        listed = await stub.ListItems(item_service_pb2.ListItemsRequest(page_size=1), metadata=student_md)
        item_id = listed.items[0].item_id
        get_item = item_service_pb2.GetItemRequest(item_id=item_id, view=item_pb2.ITEM_VIEW_STUDENT)

        async def direct() -> None:
            await stub.GetItem(get_item, metadata=student_md, timeout=10)

        grpc_ref = await load("ref: bare grpc.aio GetItem", direct)
    connector = aiohttp.TCPConnector(limit=max(students, CONCURRENCY) + 16)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        gateway = Http(stack.gateway.url, session)
        plain = Http(f"http://127.0.0.1:{plain_port}", session)
        token = mint_token(TOKEN_KEY, subject="bench", role=Role.STUDENT, ttl_seconds=7200)

        async def plain_get() -> None:
            await plain.call("GET", f"/api/items/{item_id}")

        async def gateway_get() -> None:
            await gateway.call("GET", f"/api/items/{item_id}", token)

        plain_ref = await load("ref: plain aiohttp JSON handler", plain_get)
        rows += [plain_ref, grpc_ref, await load("gateway GET /api/items/{id}", gateway_get, plain_ref)]
        put_users = await create_students(stack.session.address, CONCURRENCY, f"put-{uuid.uuid4().hex[:6]}")
        targets = await put_targets(gateway, put_users)
        turn = 0

        async def gateway_put() -> None:
            nonlocal turn
            token, sid, iid, answer = targets[turn % len(targets)]
            turn += 1
            body = {"answer": answer, "requestId": uuid.uuid4().hex}
            await gateway.call("PUT", f"/api/sessions/{sid}/responses/{iid}", token, body)

        rows.append(await load("gateway PUT answer (one item, new revision)", gateway_put, rows[0]))
        usernames = await create_students(stack.session.address, students, f"exam-{uuid.uuid4().hex[:6]}")
        exam, summary = await exam_rows(gateway, usernames, rows[0], stack.pids())
    return rows + exam, summary


def report(rows: list[Row], memory: dict[str, float], summary: dict[str, Any], machine: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(f"full stack on {machine['cpus']} CPUs ({machine['cpu_model']}), loopback; generator shares the machine\n")
    out(f"  {'row':<44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'ratio':>6} {'gen CPU':>7}\n")
    for r in rows:
        ratio = f"{r.ratio:6.2f}" if r.ratio is not None else f"{'-':>6}"
        out(
            f"  {r.name:<44} {r.rps:8.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:6d} {ratio} "
            f"{r.generator_cpu:6.0%}\n"
        )
    out("  ratio: GET to the plain aiohttp handler; PUT and exam answers to the raw SQLite commit loop\n")
    out("  gen CPU: the load generator's own CPU time / wall time (1.0 = one core of the machine's cores)\n")
    out("  peak resident memory (VmHWM): " + ", ".join(f"{k} {v:.1f} MB" for k, v in memory.items()) + "\n")
    exam = next(r for r in rows if r.name.endswith("answers acknowledged"))
    ok = (
        exam.rps >= TARGET_ANSWERS_PER_SECOND
        and exam.p99_ms <= TARGET_P99_MS
        and exam.errors == 0
        and summary["finished"] == summary["students"]
        and all(v <= TARGET_RSS_MB for v in memory.values())
    )
    out(
        f"  exam: {summary['finished']}/{summary['students']} finished, {summary['answers_acknowledged']} answers "
        f"acknowledged; targets >= {TARGET_ANSWERS_PER_SECOND:.0f} answers/s, p99 <= {TARGET_P99_MS:.0f} ms, "
        f"no errors, <= {TARGET_RSS_MB:.0f} MB each: {'met' if ok else 'MISSED'}\n"
    )
    shares = ", ".join(f"{name} {share:.0%}" for name, share in summary["cpu_share"].items())
    out(f"  CPU during the exam ({summary['seconds']:.1f} s; 100% = one core): {shares}\n")
    for kind, k in summary["by_kind"].items():
        if k["requests"]:
            out(
                f"    {kind:<16} {k['requests']:7d} req  p50 {k['p50_ms']:7.2f} ms  p99 {k['p99_ms']:8.2f} ms"
                f"  errors {k['errors']}\n"
            )
    for sample in summary["error_samples"]:
        out(f"    error: {sample}\n")


def machine_info() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "hostname": socket.gethostname(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def save(rows: list[Row], memory: dict[str, float], summary: dict[str, Any], machine: dict[str, Any]) -> Path:
    now = datetime.now(UTC)
    folder = REPO_ROOT / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"bench-{now:%Y%m%dT%H%M%SZ}-{machine['hostname']}.json"
    document = {
        "time": now.isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "rows": [{**asdict(r), "rps": r.rps} for r in rows],
        "peak_rss_mb": memory,
        "exam": summary,
    }
    path.write_text(json.dumps(document, indent=2, allow_nan=False, default=str) + "\n")
    return path


def run(students: int) -> Path:
    with tempfile.TemporaryDirectory(prefix="exam-bench-") as tmp:
        workdir = Path(tmp)
        stack = Stack(workdir, build_demo_bank(workdir / "item_bank.db"), TOKEN_KEY)
        plain_port_file = workdir / "plain.port"
        plain = multiprocessing.get_context("spawn").Process(target=plain_server, args=(str(plain_port_file),))
        plain.start()
        try:
            stack.start()
            plain_port = wait_port(plain_port_file, plain.is_alive)
            rows, summary = asyncio.run(measure(stack, plain_port, students))
            memory = {name: proc_status_mb(pid, "VmHWM") for name, pid in stack.pids().items()}
        finally:
            plain.terminate()
            plain.join()
            stack.stop()
    machine = machine_info()
    report(rows, memory, summary, machine)
    path = save(rows, memory, summary, machine)
    sys.stdout.write(f"  saved {path.relative_to(REPO_ROOT)}\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.exam_bench", description=__doc__)
    parser.add_argument(
        "--students",
        type=int,
        default=int(os.environ.get("EXAM_BENCH_STUDENTS", DEFAULT_STUDENTS)),
        help=f"concurrent students in the simulated exam (env EXAM_BENCH_STUDENTS; default {DEFAULT_STUDENTS})",
    )
    args = parser.parse_args(argv if argv is not None else [])
    run(args.students)


if __name__ == "__main__":
    main(sys.argv[1:])
