"""The whole stack under load: reference rows, GET and PUT through the gateway, and N students sitting an exam."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import resource
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import orjson
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from bench.common import (
    LoopLag,
    cpu_seconds_of,
    megabytes,
    peak_memory_mb,
    percentiles,
    plain_server,
    raw_sqlite_commits,
    settle_generator,
)
from launcher.answers import ADAPTIVE, answer_for, objective
from launcher.procs import REPO_ROOT, build_demo_bank, wait_port
from launcher.stack import Stack
from toefl_core.auth import Role, auth_metadata, mint_token
from toefl_core.server import run_event_loop

TOKEN_KEY = "bench-token-key-for-the-exam-benchmark-000001"
DEFAULT_STUDENTS = 500
CONCURRENCY = 64
REQUESTS = 4000
WARMUP = 200
SETUP_CONCURRENCY = 16
PASSWORD = "bench password 2026"
# The benchmark stops by itself: an exam not finished within this bound counts its students as errors.
EXAM_TIME_LIMIT_SECONDS = 150.0
# Paced rows at these shares of the closed loop's answers/s measured in the same run (issue 22's targets: answer
# and advance p99 at 30% and at 60%).
DEFAULT_PACED_FRACTIONS = (0.3, 0.6)
PACED_TARGETS_MS = {0.3: (50.0, 250.0), 0.6: (100.0, 500.0)}
# Paced logins and creates are spread evenly over this many seconds before the first answer, as students trickle
# into a room before the start; 500 creates at one instant would be a burst no school produces. Every answer clock
# starts when this spread ends, so the offered answer rate is the full rate from the first answer on.
PACED_START_SPREAD_SECONDS = 10.0
# A full test of the demo bank asks 66-67 objective items (33,390 answers for 500 students); the time limit of the
# paced exam allows twice that many intervals plus a margin, so a machine at half the offered rate still finishes
# and its latency is measured rather than cut off.
PACED_ANSWERS_PER_STUDENT = 70
PACED_LIMIT_MARGIN_SECONDS = 30.0
# Fixed, so two runs offer the same send times.
PACED_SEED = 2026
# A paced row's slowest answers are placed in time, in this many windows at most: a room's module change, or the
# modules assembled ahead for the one after it, are a few seconds each, and a tail comes from one or two of them.
SLOW_WINDOWS = 3
TARGET_RSS_MB = 150.0
# The capacity row: students each answering after a think time drawn from a gamma distribution of mean 30 s
# (shape 2: a spread like a real room's, fewer sub-second clicks than an exponential), stepped up in count until
# answer p99 > 100 ms or advance p99 > 500 ms.
THINK_MEAN_SECONDS = 30.0
THINK_SHAPE = 2.0
DEFAULT_CAPACITY_STEPS = (2500, 5000, 10000, 15000)
CAPACITY_WINDOW_SECONDS = 60.0
CAPACITY_CONNECTIONS = 256
CAPACITY_ANSWER_P99_MS = 100.0
CAPACITY_ADVANCE_P99_MS = 500.0
# A seated student renews its access token (15 minutes) well before it lapses, and advances a module whose
# deadline is this close rather than answer into it.
RENEW_AFTER_SECONDS = 600.0
DEADLINE_MARGIN_SECONDS = 5.0


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
    # When each request was sent (perf_counter seconds), where a bench cuts its latencies into phases.
    sent_at: list[float] = field(default_factory=list)


EXAM_KINDS = ("login", "create session", "answer", "advance", "finish")


def exam_tallies() -> dict[str, Tally]:
    return {kind: Tally() for kind in EXAM_KINDS}


def by_kind(tallies: dict[str, Tally]) -> dict[str, dict[str, Any]]:
    """Requests, errors, p50 and p99 (ms) of each kind of request of an exam."""
    return {
        kind: {
            "requests": len(t.latencies),
            "errors": len(t.errors),
            "p50_ms": percentiles(t.latencies)[0] if t.latencies else None,
            "p99_ms": percentiles(t.latencies)[1] if t.latencies else None,
        }
        for kind, t in tallies.items()
    }


def slowest_answers(
    answers: Tally, advances_by_module: dict[str, Tally], origin: float, threshold_ms: float
) -> list[dict[str, Any]]:
    """When the answers at or beyond `threshold_ms` were sent: seconds after `origin`, in one-second windows
    joined where they touch, the SLOW_WINDOWS holding most of them, each with the advances sent meanwhile by the
    module they left (which module change, or which preparation after it, the slow answers met)."""
    seconds = sorted(
        int(sent - origin)
        for ms, sent in zip(answers.latencies, answers.sent_at, strict=True)
        if ms >= threshold_ms
    )
    windows: list[list[int]] = []
    for second in seconds:
        if windows and second <= windows[-1][1] + 1:
            windows[-1][1] = second
            windows[-1][2] += 1
        else:
            windows.append([second, second, 1])
    found = []
    for start, end, count in sorted(windows, key=lambda w: -w[2])[:SLOW_WINDOWS]:
        advances = {
            module: n
            for module, tally in sorted(advances_by_module.items())
            if (n := sum(1 for sent in tally.sent_at if start <= sent - origin < end + 1))
        }
        found.append(
            {
                "from_s": start,
                "to_s": end + 1,
                "answers": count,
                "share": count / len(seconds),
                "advances": advances,
            }
        )
    return found


def answers_by_second(
    answers: Tally, advances_by_module: dict[str, Tally], origin: float, threshold_ms: float
) -> list[dict[str, Any]]:
    """Each second after `origin` in which answers were sent: how many, how many took `threshold_ms` (the row's
    p99) or more, the slowest, and the advances sent in it by the module they left. Saved with the row, not
    printed: where the row's tail is, second by second."""
    seconds: dict[int, dict[str, Any]] = {}
    for ms, sent in zip(answers.latencies, answers.sent_at, strict=True):
        second = seconds.setdefault(
            int(sent - origin), {"answers": 0, "at_or_beyond": 0, "slowest_ms": 0.0, "advances": {}}
        )
        second["answers"] += 1
        second["at_or_beyond"] += ms >= threshold_ms
        second["slowest_ms"] = max(second["slowest_ms"], ms)
    for module, tally in sorted(advances_by_module.items()):
        for sent in tally.sent_at:
            if (during := seconds.get(int(sent - origin))) is not None:
                during["advances"][module] = during["advances"].get(module, 0) + 1
    return [{"second": n, **seconds[n]} for n in sorted(seconds)]


def all_requests(tallies: dict[str, Tally]) -> Tally:
    return Tally(
        [ms for t in tallies.values() for ms in t.latencies], [e for t in tallies.values() for e in t.errors]
    )


@dataclass
class PacedLog:
    """The paced answers against their students' clocks (perf_counter seconds; lags in ms)."""

    answers_from: float
    sent: int = 0
    late: int = 0
    on_time_lag_ms: list[float] = field(default_factory=list)
    from_schedule_ms: list[float] = field(default_factory=list)
    acknowledged_at: list[float] = field(default_factory=list)
    # When each student that answered all its items had its last answer acknowledged.
    done_answering: list[float] = field(default_factory=list)

    def full_load_end(self) -> float:
        """The end of the part where every student is still answering (the last reply if none got through)."""
        if self.done_answering:
            return min(self.done_answering)
        return max(self.acknowledged_at, default=self.answers_from)


@dataclass
class Pace:
    """One paced student's clock: when it logs in, and when its next answer is due."""

    log: PacedLog
    start_at: float
    next_answer: float
    interval: float
    last_acknowledged: float | None = None

    async def turn(self) -> float:
        """Wait until the next answer is due (not at all if already late) and return the time it was due."""
        due = self.next_answer
        # From the due time, not from now: a slow reply makes one answer late, not every later one.
        self.next_answer += self.interval
        if time.perf_counter() < due:
            await sleep_until(due)
            # The oversleep of an answer that was waiting for its time: the generator's own timing error.
            self.log.on_time_lag_ms.append((time.perf_counter() - due) * 1e3)
        else:
            self.log.late += 1
        self.log.sent += 1
        return due


async def sleep_until(when: float) -> None:
    delay = when - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


@dataclass
class Cpu:
    """CPU seconds used so far by the load generator and by each service."""

    generator: float
    services: dict[str, float]

    @classmethod
    def now(cls, pids: dict[str, int]) -> Cpu:
        return cls(cpu_seconds(), {name: cpu_seconds_of(pid) for name, pid in pids.items()})

    def shares_since(self, earlier: Cpu, seconds: float) -> dict[str, float]:
        """Each process's CPU time between `earlier` and this sample / `seconds` (1.0 = one core)."""
        if seconds <= 0:
            return {}
        services = {name: (used - earlier.services[name]) / seconds for name, used in self.services.items()}
        return {"load generator": (self.generator - earlier.generator) / seconds, **services}


@dataclass
class Sitting:
    """How a group of exams ended: wall time, CPU at both ends, students finished, failed and timed out."""

    started: float
    seconds: float
    cpu_before: Cpu
    cpu_after: Cpu
    finished: int
    failed: int
    timed_out: int
    failures: list[str]
    generator_lag: dict[str, float | None]


async def sit_all(exams: list[Coroutine[Any, Any, int]], limit: float, pids: dict[str, int]) -> Sitting:
    """All `exams` at once; those still running after `limit` seconds are cancelled and count as timed out."""
    settle_generator()
    lag = LoopLag().start()
    cpu_before, started = Cpu.now(pids), time.perf_counter()
    tasks = [asyncio.create_task(exam) for exam in exams]
    done, pending = await asyncio.wait(tasks, timeout=limit)
    seconds, cpu_after = time.perf_counter() - started, Cpu.now(pids)
    generator_lag = lag.stop()
    for task in pending:
        task.cancel()
    # Cancelled students must be gone before the next phase starts, or their requests would load it.
    await asyncio.gather(*pending, return_exceptions=True)
    failed = [t.exception() for t in done if t.exception() is not None]
    failures = sorted({f"student failed: {type(exc).__name__}: {str(exc)[:160]}" for exc in failed})
    return Sitting(
        started,
        seconds,
        cpu_before,
        cpu_after,
        len(done) - len(failed),
        len(failed),
        len(pending),
        failures,
        generator_lag,
    )


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


def finish_row(
    name: str, tally: Tally, seconds: float, cpu: float, reference: Row | None, requests: int | None = None
) -> Row:
    """A row of `tally`: its requests (or `requests` of them, if given) in `seconds`, its latencies and errors."""
    p50, p99 = percentiles(tally.latencies) if tally.latencies else (float("nan"), float("nan"))
    acknowledged = len(tally.latencies) - len(tally.errors) if requests is None else requests
    row = Row(name, acknowledged, len(tally.errors), seconds, p50, p99)
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
    """JSON over one aiohttp session, called as the web client calls: a 429 or 503 with Retry-After is waited out
    and sent again (counted in `sent_again`); any other non-2xx answer raises RuntimeError with the status and
    body."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session
        self.sent_again = 0

    async def call(self, method: str, path: str, token: str = "", body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # orjson, as a browser's JSON is native code: the generator shares the services' machine, so its JSON would
        # otherwise take CPU from them that no browser takes (an advance's reply is 11 KB).
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = orjson.dumps(body)
        while True:
            async with self.session.request(method, self.base + path, data=data, headers=headers) as response:
                raw = await response.read()
                retry_after = response.headers.get("Retry-After")
                if response.status not in (429, 503) or retry_after is None:
                    if response.status >= 300:
                        raise RuntimeError(f"{method} {path.split('?')[0]}: HTTP {response.status} {raw[:160]!r}")
                    return orjson.loads(raw)
            self.sent_again += 1
            await asyncio.sleep(float(retry_after))


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


async def sit_exam(
    http: Http,
    username: str,
    tallies: dict[str, Tally],
    pace: Pace | None = None,
    advances_by_module: dict[str, Tally] | None = None,
) -> int:
    """One student: log in, start a full test, answer its objective items (on `pace`'s clock if any), finish;
    `advances_by_module` also gets each advance's latency under the module it left ("READING ROUTER")."""

    def tally(kind: str, started: float, due: float | None, also: Tally | None, error: str | None = None) -> None:
        replied = time.perf_counter()
        for counted in (tallies[kind], also) if also is not None else (tallies[kind],):
            counted.latencies.append((replied - started) * 1e3)
            counted.sent_at.append(started)
            if error is not None:
                counted.errors.append(error)
        if pace is not None and due is not None:
            pace.log.from_schedule_ms.append((replied - due) * 1e3)
            if error is None:
                pace.log.acknowledged_at.append(replied)
                pace.last_acknowledged = replied

    async def timed(
        kind: str,
        method: str,
        path: str,
        token: str = "",
        body: Any = None,
        due: float | None = None,
        also: Tally | None = None,
    ) -> Any:
        """The reply, its latency (or error) tallied under `kind` and in `also`."""
        # Tallied on a reply or an error only: a request cancelled at the time limit was never answered.
        started = time.perf_counter()
        try:
            reply = await http.call(method, path, token, body)
        except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
            tally(kind, started, due, also, str(exc)[:200] or type(exc).__name__)
            raise
        tally(kind, started, due, also)
        return reply

    if pace is not None:
        await sleep_until(pace.start_at)
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
                due = await pace.turn() if pace is not None else None
                body = {"answer": answer_for(item), "requestId": uuid.uuid4().hex, "elapsedMs": 1000}
                path = f"/api/sessions/{sid}/responses/{item['itemId']}"
                await timed("answer", "PUT", path, token, body, due)
                answered += 1
        by_module = None
        if advances_by_module is not None:
            left = f"{module['section'].removeprefix('SECTION_')} {module['stage'].removeprefix('MODULE_STAGE_')}"
            by_module = advances_by_module.setdefault(left, Tally())
        advance = {"requestId": uuid.uuid4().hex}
        path = f"/api/sessions/{sid}:advance"
        session = await timed("advance", "POST", path, token, advance, also=by_module)
    if pace is not None and pace.last_acknowledged is not None:
        pace.log.done_answering.append(pace.last_acknowledged)
    await timed("finish", "POST", f"/api/sessions/{sid}:finish", token, {})
    return answered


def cpu_per_answer(cpu_share: dict[str, float], seconds: float, answers: int) -> dict[str, float | None]:
    """CPU milliseconds per acknowledged answer (the exam's other requests included), and the answers/s that the
    machine's cores would bound this mix at if every process used them perfectly in parallel.

    Meaningful for the closed loop only, where the stack is saturated: at a light load each service's idle
    work (polling, the deadline sweep) is spread over few answers."""
    if answers <= 0 or seconds <= 0:
        return {"services_ms": None, "all_ms": None, "bound_answers_per_second": None}
    services = sum(v for k, v in cpu_share.items() if k != "load generator")
    everything = sum(cpu_share.values())
    return {
        "services_ms": 1000 * services * seconds / answers,
        "all_ms": 1000 * everything * seconds / answers,
        "bound_answers_per_second": (os.cpu_count() or 1) * answers / (everything * seconds)
        if everything
        else None,
    }


async def exam_rows(
    http: Http, usernames: list[str], put_reference: Row, pids: dict[str, int]
) -> tuple[list[Row], dict[str, Any]]:
    """The closed loop: every student sends its next request the instant the previous one is answered."""
    tallies = exam_tallies()
    sent_again = http.sent_again
    sitting = await sit_all([sit_exam(http, name, tallies) for name in usernames], EXAM_TIME_LIMIT_SECONDS, pids)
    seconds, cpu = sitting.seconds, sitting.cpu_after.generator - sitting.cpu_before.generator
    rows = [
        finish_row(
            f"exam x{len(usernames)}: answers acknowledged", tallies["answer"], seconds, cpu, put_reference
        ),
        finish_row(f"exam x{len(usernames)}: all requests", all_requests(tallies), seconds, cpu, None),
    ]
    shares = sitting.cpu_after.shares_since(sitting.cpu_before, seconds)
    summary = {
        "students": len(usernames),
        "finished": sitting.finished,
        "failed": sitting.failed,
        "timed_out": sitting.timed_out,
        "answers_acknowledged": rows[0].requests,
        "answers_per_second": rows[0].rps,
        "answer_p50_ms": rows[0].p50_ms,
        "answer_p99_ms": rows[0].p99_ms,
        "answer_errors": rows[0].errors,
        "seconds": seconds,
        "cpu_share": shares,
        "cpu_per_answer": cpu_per_answer(shares, seconds, rows[0].requests),
        "generator_lag": sitting.generator_lag,
        "by_kind": by_kind(tallies),
        "sent_again_after_retry_after": http.sent_again - sent_again,
        "error_samples": sorted({e for t in tallies.values() for e in t.errors} | set(sitting.failures))[:10],
    }
    return rows, summary


def paced_time_limit(interval: float) -> float:
    return PACED_START_SPREAD_SECONDS + 2 * PACED_ANSWERS_PER_STUDENT * interval + PACED_LIMIT_MARGIN_SECONDS


async def paced_exam_rows(
    http: Http, usernames: list[str], rate: float, put_reference: Row, pids: dict[str, int]
) -> tuple[list[Row], dict[str, Any]]:
    """The same exam with answers offered at `rate` per second by all students together, one in flight each."""
    students = len(usernames)
    interval = students / rate
    limit = paced_time_limit(interval)
    tallies = exam_tallies()
    # A short lead so that the first student's login is not already late when its task first runs.
    origin = time.perf_counter() + 0.1
    log = PacedLog(answers_from=origin + PACED_START_SPREAD_SECONDS)
    phases = random.Random(PACED_SEED)
    paces = [
        Pace(
            log,
            origin + n * PACED_START_SPREAD_SECONDS / students,
            log.answers_from + phases.uniform(0, interval),
            interval,
        )
        for n in range(students)
    ]

    async def cpu_at(when: float) -> Cpu:
        await sleep_until(when)
        return Cpu.now(pids)

    cpu_at_answers = asyncio.create_task(cpu_at(log.answers_from))
    sent_again = http.sent_again
    # Students who start together change modules together; which change is slow says where a tail comes from.
    advances_by_module: dict[str, Tally] = {}
    sitting = await sit_all(
        [sit_exam(http, u, tallies, p, advances_by_module) for u, p in zip(usernames, paces, strict=True)],
        limit,
        pids,
    )
    # A run that ended before its answering part started (every login failing) has no answering window.
    answering_cpu = await cpu_at_answers if cpu_at_answers.done() else sitting.cpu_after
    cpu_at_answers.cancel()
    acknowledged = len(log.acknowledged_at)
    answering = max(log.acknowledged_at, default=log.answers_from) - log.answers_from
    # The rate is taken while all students are still answering: at the end some have fewer items (66 or 67) and
    # leave earlier, so over the whole answering part even a perfect stack would show ~0.4% below the offered rate.
    full_load_end = log.full_load_end()
    full_load = full_load_end - log.answers_from
    full_load_acknowledged = sum(1 for t in log.acknowledged_at if t <= full_load_end)
    answering_until_end = sitting.started + sitting.seconds - log.answers_from
    answering_share = sitting.cpu_after.shares_since(answering_cpu, answering_until_end)
    run_cpu = sitting.cpu_after.generator - sitting.cpu_before.generator
    name = f"exam x{students} paced at {rate:g} answers/s: answers acknowledged"
    answers = finish_row(name, tallies["answer"], full_load, 0.0, put_reference, full_load_acknowledged)
    answers.generator_cpu = answering_share.get("load generator", float("nan"))
    rows = [
        answers,
        finish_row(f"exam x{students} paced: all requests", all_requests(tallies), sitting.seconds, run_cpu, None),
    ]

    def p50_p99(samples: list[float]) -> dict[str, float | None]:
        p50, p99 = percentiles(samples) if samples else (None, None)
        return {"p50_ms": p50, "p99_ms": p99}

    summary = {
        "students": students,
        "offered_answers_per_second": rate,
        "interval_seconds": interval,
        "start_spread_seconds": PACED_START_SPREAD_SECONDS,
        "time_limit_seconds": limit,
        "finished": sitting.finished,
        "failed": sitting.failed,
        "timed_out": sitting.timed_out,
        "answers_sent": log.sent,
        "answers_acknowledged": acknowledged,
        "full_load_seconds": full_load,
        "full_load_answers_acknowledged": full_load_acknowledged,
        "answers_per_second": answers.rps,
        "answers_per_second_whole_answering_part": acknowledged / answering if answering > 0 else 0.0,
        "answer_p50_ms": answers.p50_ms,
        "answer_p99_ms": answers.p99_ms,
        "answer_errors": answers.errors,
        "answering_seconds": answering,
        "seconds": sitting.seconds,
        "late_sends": log.late,
        "late_share": log.late / log.sent if log.sent else 0.0,
        "on_time_send_lag": p50_p99(log.on_time_lag_ms),
        "due_to_reply": p50_p99(log.from_schedule_ms),
        "cpu_share": sitting.cpu_after.shares_since(sitting.cpu_before, sitting.seconds),
        "cpu_share_answering": answering_share,
        "generator_lag": sitting.generator_lag,
        "by_kind": by_kind(tallies),
        "advance_by_module_left": by_kind(advances_by_module),
        "slowest_answers": {
            "threshold_ms": answers.p99_ms,
            "windows": slowest_answers(tallies["answer"], advances_by_module, log.answers_from, answers.p99_ms)
            if tallies["answer"].latencies
            else [],
        },
        "answers_by_second": answers_by_second(
            tallies["answer"], advances_by_module, log.answers_from, answers.p99_ms
        ),
        "sent_again_after_retry_after": http.sent_again - sent_again,
        "error_samples": sorted({e for t in tallies.values() for e in t.errors} | set(sitting.failures))[:10],
    }
    return rows, summary


@dataclass
class Seat:
    """A student of the capacity row, signed in with a test started: where it is and what its client holds."""

    token: str
    refresh: str
    renewed_at: float
    sid: str
    session: dict[str, Any]
    position: int
    deadline_at: float = float("inf")

    def module_items(self) -> list[dict[str, Any]]:
        module = self.session.get("currentModule")
        if not module or module.get("section") not in (*ADAPTIVE, "SECTION_WRITING"):
            return []
        return [item for item in module["items"] if objective(module, item)]

    def opened(self, session: dict[str, Any], position: int = 0) -> None:
        self.session, self.position = session, position
        remaining = float(session.get("currentModule", {}).get("remainingSeconds", 0) or 0)
        self.deadline_at = time.perf_counter() + remaining if remaining else float("inf")


async def seat_students(http: Http, usernames: list[str], rng: random.Random) -> list[Seat]:
    """Sign each student in and start its full test (setup, not measured), each at a random item of its first
    module: in a sitting under way students are spread over their modules, so advances are spread in time."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(username: str) -> Seat:
        async with gate:
            login = await http.call("POST", "/api/auth/token", body={"username": username, "password": PASSWORD})
            create = {"scope": "SESSION_SCOPE_FULL_TEST", "requestId": uuid.uuid4().hex}
            session = await http.call("POST", "/api/sessions", login["accessToken"], create)
        seat = Seat(login["accessToken"], login["refreshToken"], time.perf_counter(), session["sessionId"], {}, 0)
        seat.opened(session)
        seat.position = rng.randrange(max(1, len(seat.module_items())))
        return seat

    return list(await asyncio.gather(*(one(u) for u in usernames)))


async def browse(
    http: Http,
    seat: Seat,
    tallies: dict[str, Tally],
    until: float,
    rng: random.Random,
    think_mean: float = THINK_MEAN_SECONDS,
) -> None:
    """One seated student until `until`: think (gamma, mean `think_mean` s), answer its next item; advance when its
    module is done or its deadline is near; finish after the last objective module. Latencies tallied by kind,
    by the time each request was sent (`Tally.sent_at`)."""
    # A student mid-sitting is somewhere in a think time when the window opens: the time to its next click is a
    # uniform share of a length-biased think time (gamma of shape + 1: a long think is more likely to be under
    # way), the stationary start of these clicks. A uniform wait up to the mean, as before, made the first 30 s
    # run at 500-576 answers/s for 10,000 students instead of the 333/s a 30-s pace gives (docs/PERFORMANCE.md).
    due = time.perf_counter() + rng.random() * rng.gammavariate(THINK_SHAPE + 1, think_mean / THINK_SHAPE)
    while True:
        # A student whose next click falls after the window stops at its end: waiting for every student's next
        # click kept the row running for minutes after the window, and its CPU shares were divided by that time.
        await sleep_until(min(due, until))
        if time.perf_counter() >= until:
            return
        if time.perf_counter() - seat.renewed_at > RENEW_AFTER_SECONDS:
            renewed = await http.call("POST", "/api/auth/token:refresh", body={"refreshToken": seat.refresh})
            seat.token, seat.refresh, seat.renewed_at = (
                renewed["accessToken"],
                renewed["refreshToken"],
                time.perf_counter(),
            )
        items = seat.module_items()
        kind = "answer"
        started = time.perf_counter()
        try:
            if not seat.session.get("currentModule"):
                kind = "finish"
                await http.call("POST", f"/api/sessions/{seat.sid}:finish", seat.token, {})
                tallies[kind].latencies.append((time.perf_counter() - started) * 1e3)
                tallies[kind].sent_at.append(started)
                return
            if seat.position >= len(items) or due + DEADLINE_MARGIN_SECONDS >= seat.deadline_at:
                kind = "advance"
                advance = {"requestId": uuid.uuid4().hex}
                seat.opened(await http.call("POST", f"/api/sessions/{seat.sid}:advance", seat.token, advance))
            else:
                item = items[seat.position]
                body = {"answer": answer_for(item), "requestId": uuid.uuid4().hex, "elapsedMs": 1000}
                await http.call("PUT", f"/api/sessions/{seat.sid}/responses/{item['itemId']}", seat.token, body)
                seat.position += 1
        except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
            tallies[kind].errors.append(str(exc)[:200] or type(exc).__name__)
        tallies[kind].latencies.append((time.perf_counter() - started) * 1e3)
        tallies[kind].sent_at.append(started)
        # An advance is the click right after the last answer; the next answer comes after a think time.
        due = max(due, time.perf_counter()) + (
            0.0
            if kind == "answer" and seat.position >= len(items)
            else rng.gammavariate(THINK_SHAPE, think_mean / THINK_SHAPE)
        )


async def capacity_rows(
    stack: Stack, steps: list[int], window: float, pids: dict[str, int]
) -> tuple[list[Row], dict[str, Any]]:
    """Students at a 30-second pace, stepped up in count until a step misses answer p99 <= 100 ms or advance
    p99 <= 500 ms. Every student is an asyncio task of this one process; all share CAPACITY_CONNECTIONS keep-alive
    connections to the gateway (a request waits for a free one, which counts in its latency)."""
    assert stack.session is not None and stack.gateway is not None
    rng = random.Random(PACED_SEED)
    seats: list[Seat] = []
    rows: list[Row] = []
    results: list[dict[str, Any]] = []
    connector = aiohttp.TCPConnector(limit=CAPACITY_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        http = Http(stack.gateway.url, session)
        for count in steps:
            setup_started = time.perf_counter()
            if count > len(seats):
                names = await create_students(
                    stack.session.address, count - len(seats), f"cap-{uuid.uuid4().hex[:6]}"
                )
                seats += await seat_students(http, names, rng)
            setup = time.perf_counter() - setup_started
            tallies = exam_tallies()
            settle_generator()
            lag = LoopLag().start()
            cpu_before, started = Cpu.now(pids), time.perf_counter()
            until = started + window
            await asyncio.gather(*(browse(http, seat, tallies, until, rng) for seat in seats[:count]))
            seconds = time.perf_counter() - started
            generator_lag = lag.stop()
            shares = Cpu.now(pids).shares_since(cpu_before, seconds)
            kinds = by_kind(tallies)
            answer, advance = kinds["answer"], kinds["advance"]
            ok = (
                answer["p99_ms"] is not None
                and answer["p99_ms"] <= CAPACITY_ANSWER_P99_MS
                and (advance["p99_ms"] or 0.0) <= CAPACITY_ADVANCE_P99_MS
                and answer["errors"] == 0
                and advance["errors"] == 0
            )
            name = f"capacity: {count} students, think time mean {THINK_MEAN_SECONDS:g} s: answers"
            rows.append(finish_row(name, tallies["answer"], window, 0.0, None))
            results.append(
                {
                    "students": count,
                    "offered_answers_per_second": count / THINK_MEAN_SECONDS,
                    "answers_per_second": rows[-1].rps,
                    "setup_seconds": setup,
                    "window_seconds": seconds,
                    "within_targets": ok,
                    "cpu_share": shares,
                    "generator_lag": generator_lag,
                    "by_kind": kinds,
                    "error_samples": sorted({e for t in tallies.values() for e in t.errors})[:5],
                }
            )
            if not ok:
                break
    passed = [r["students"] for r in results if r["within_targets"]]
    return rows, {
        "steps": results,
        "capacity_students": max(passed, default=0),
        "think_time": f"gamma, shape {THINK_SHAPE:g}, mean {THINK_MEAN_SECONDS:g} s",
        "connections": CAPACITY_CONNECTIONS,
        "window_seconds": window,
    }


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


@dataclass
class Plan:
    """What the exam bench runs: students per exam, the paced rows (shares of the closed loop's answers/s, or
    one fixed rate), the capacity steps and window."""

    students: int = DEFAULT_STUDENTS
    paced_fractions: tuple[float, ...] = DEFAULT_PACED_FRACTIONS
    paced_rate: float = 0.0
    capacity_steps: tuple[int, ...] = DEFAULT_CAPACITY_STEPS
    capacity_window: float = CAPACITY_WINDOW_SECONDS


async def measure(stack: Stack, plain_port: int, plan: Plan) -> tuple[list[Row], dict[str, Any]]:
    """Every row, and the summaries of the closed-loop ("exam"), paced ("paced_exams") and capacity exams."""
    students = plan.students
    assert stack.item is not None and stack.session is not None and stack.gateway is not None
    rows = [raw_sqlite_row(stack.workdir / "raw.db")]
    # Students do not read the bank (issue 15): an item read is measured as a teacher makes it.
    reader_md = auth_metadata(mint_token(TOKEN_KEY, subject="bench", role=Role.TEACHER, ttl_seconds=7200))
    async with grpc.aio.insecure_channel(stack.item.address) as channel:
        stub = item_service_pb2_grpc.ItemServiceStub(channel)
        listed = await stub.ListItems(item_service_pb2.ListItemsRequest(page_size=1), metadata=reader_md)
        item_id = listed.items[0].item_id
        get_item = item_service_pb2.GetItemRequest(item_id=item_id, view=item_pb2.ITEM_VIEW_STUDENT)

        async def direct() -> None:
            await stub.GetItem(get_item, metadata=reader_md, timeout=10)

        grpc_ref = await load("ref: bare grpc.aio GetItem", direct)
    connector = aiohttp.TCPConnector(limit=max(students, CONCURRENCY) + 16)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        gateway = Http(stack.gateway.url, session)
        plain = Http(f"http://127.0.0.1:{plain_port}", session)
        token = mint_token(TOKEN_KEY, subject="bench", role=Role.TEACHER, ttl_seconds=7200)

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
        rows += exam
        paced_summaries = []
        rates = (
            [(None, plan.paced_rate)]
            if plan.paced_rate > 0
            else [(f, f * summary["answers_per_second"]) for f in plan.paced_fractions]
        )
        for fraction, rate in rates:
            if rate <= 0:
                continue
            usernames = await create_students(stack.session.address, students, f"paced-{uuid.uuid4().hex[:6]}")
            paced, paced_summary = await paced_exam_rows(gateway, usernames, rate, rows[0], stack.pids())
            paced_summary["fraction_of_closed_loop"] = fraction
            paced_summaries.append(paced_summary)
            rows += paced
    # The memory target is the exam's (docs/PERFORMANCE.md's targets: 500 students); the capacity row's thousands
    # of students are a load of their own, their peak reported beside it.
    exam_memory = peak_memory_mb(stack.pids())
    capacity = None
    if plan.capacity_steps:
        capacity_found, capacity = await capacity_rows(
            stack, list(plan.capacity_steps), plan.capacity_window, stack.pids()
        )
        rows += capacity_found
    return rows, {
        "exam": summary,
        "paced_exams": paced_summaries,
        "capacity": capacity,
        "exam_peak_rss_mb": exam_memory,
    }


def report_exam(title: str, summary: dict[str, Any]) -> None:
    """Where an exam's CPU went and its per-kind breakdown."""
    out = sys.stdout.write
    shares = ", ".join(f"{name} {share:.0%}" for name, share in summary["cpu_share"].items())
    out(f"  CPU during the {title} ({summary['seconds']:.1f} s; 100% = one core): {shares}\n")
    if "cpu_share_answering" in summary:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in summary["cpu_share_answering"].items())
        out(f"    from its first answer on: {shares}\n")
    per = summary.get("cpu_per_answer")
    if per is not None and per["bound_answers_per_second"] is not None:
        out(
            f"    CPU per acknowledged answer, the exam's other requests included: {per['services_ms']:.2f} ms in "
            f"the services, {per['all_ms']:.2f} ms with the generator; {os.cpu_count()} cores bound this mix at "
            f"{per['bound_answers_per_second']:.0f} answers/s even with every process perfectly parallel\n"
        )
    for kind, k in summary["by_kind"].items():
        if k["requests"]:
            out(
                f"    {kind:<16} {k['requests']:7d} req  p50 {k['p50_ms']:7.2f} ms  p99 {k['p99_ms']:8.2f} ms"
                f"  errors {k['errors']}\n"
            )
    if summary["sent_again_after_retry_after"]:
        out(
            f"    {summary['sent_again_after_retry_after']} requests refused with 429/503 and Retry-After, sent "
            "again after it (as the web client does; their latency counts the wait)\n"
        )
    for sample in summary["error_samples"]:
        out(f"    error: {sample}\n")


def report(rows: list[Row], memory: dict[str, float], summaries: dict[str, Any], machine: dict[str, Any]) -> None:
    out = sys.stdout.write
    width = max(44, *(len(r.name) for r in rows))
    out(f"full stack on {machine['cpus']} CPUs ({machine['cpu_model']}), loopback; generator shares the machine\n")
    out(f"  {'row':<{width}} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'ratio':>6} {'gen CPU':>7}\n")
    for r in rows:
        ratio = f"{r.ratio:6.2f}" if r.ratio is not None else f"{'-':>6}"
        out(
            f"  {r.name:<{width}} {r.rps:8.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:6d} {ratio} "
            f"{r.generator_cpu:6.0%}\n"
        )
    out("  ratio: GET to the plain aiohttp handler; PUT and exam answers to the raw SQLite commit loop\n")
    out("  gen CPU: the load generator's own CPU time / wall time (1.0 = one core of the machine's cores)\n")
    out(
        "  paced answers: req/s while every student is still answering (from the first due time until a student "
        "has its last answer acknowledged); p50/p99 and errors of all its answers\n"
    )
    exam_memory = summaries["exam_peak_rss_mb"]
    students = summaries["exam"]["students"]
    out(f"  peak resident memory (VmHWM) with {students} students sitting: {megabytes(exam_memory)}\n")
    if summaries["capacity"] is not None:
        out(f"  peak resident memory (VmHWM) after the capacity row too: {megabytes(memory)}\n")
    closed = summaries["exam"]
    out(
        f"  closed-loop exam: {closed['finished']}/{closed['students']} finished, "
        f"{closed['answers_acknowledged']} answers acknowledged, {closed['answers_per_second']:.0f} answers/s, "
        f"p99 {closed['answer_p99_ms']:.0f} ms "
        f"(closed loop: mean latency = students / throughput, so its p99 is not judged)\n"
    )
    report_exam("closed-loop exam", closed)
    rss_ok = all(v <= TARGET_RSS_MB for v in exam_memory.values())
    verdict = "met" if rss_ok else "MISSED"
    out(f"  peak memory <= {TARGET_RSS_MB:.0f} MB each with {students} students: {verdict}\n")
    for paced in summaries["paced_exams"]:
        report_paced(paced)
    if summaries["capacity"] is not None:
        report_capacity(summaries["capacity"])


def p99_of(summary: dict[str, Any], kind: str) -> float:
    value = summary["by_kind"][kind]["p99_ms"]
    return float("nan") if value is None else float(value)


def report_paced(paced: dict[str, Any]) -> None:
    out = sys.stdout.write
    fraction = paced["fraction_of_closed_loop"]
    share = f"{fraction:.0%} of the closed loop, " if fraction is not None else ""
    kinds = paced["by_kind"]
    out(
        f"  paced exam at {share}{paced['offered_answers_per_second']:.0f} answers/s offered (one every "
        f"{paced['interval_seconds']:.2f} s per student): {paced['finished']}/{paced['students']} finished "
        f"({paced['failed']} failed, {paced['timed_out']} timed out), {paced['answers_per_second']:.0f} answers/s "
        f"while all were answering; answer p50 {paced['answer_p50_ms']:.1f} ms "
        f"p99 {paced['answer_p99_ms']:.1f} ms, "
        f"advance p50 {kinds['advance']['p50_ms'] or float('nan'):.1f} ms p99 {p99_of(paced, 'advance'):.1f} ms\n"
    )
    out(f"    {generator_stalls(paced)}\n")
    left = paced["advance_by_module_left"]
    if left:
        modules = ", ".join(f"{name} {k['p50_ms']:.0f} / {k['p99_ms']:.0f}" for name, k in sorted(left.items()))
        out(f"    advance p50 / p99 ms by the module left: {modules}\n")
    slowest = paced["slowest_answers"]
    if slowest["windows"]:
        windows = "; ".join(
            f"{w['from_s']}-{w['to_s']} s {w['share']:.0%}"
            + (
                " (advances: " + ", ".join(f"{m} {n}" for m, n in w["advances"].items()) + ")"
                if w["advances"]
                else ""
            )
            for w in slowest["windows"]
        )
        threshold = slowest["threshold_ms"]
        out(f"    answers at the row's p99 or beyond ({threshold:.0f} ms), sent after the first one: {windows}\n")
    due = paced["due_to_reply"]
    if due["p99_ms"] is not None:
        out(
            f"    {paced['late_share']:.0%} of answers sent late (the previous reply came after their due time); "
            f"due time to reply p50 {due['p50_ms']:.0f} ms, p99 {due['p99_ms']:.0f} ms\n"
        )
    report_exam("paced exam", paced)
    targets = PACED_TARGETS_MS.get(fraction) if fraction is not None else None
    if targets is not None:
        answer_ms, advance_ms = targets
        met = (
            paced["answer_p99_ms"] <= answer_ms
            and p99_of(paced, "advance") <= advance_ms
            and paced["finished"] == paced["students"]
            and not paced["error_samples"]
        )
        out(
            f"    targets at {fraction:.0%}: answer p99 <= {answer_ms:.0f} ms, "
            f"advance p99 <= {advance_ms:.0f} ms, "
            f"all finished, no errors: {'met' if met else 'MISSED'}\n"
        )


def generator_stalls(summary: dict[str, Any]) -> str:
    """The generator's own event-loop stalls while the row ran, which count in every latency it measured."""
    lag = summary["generator_lag"]
    if lag["p99_ms"] is None:
        return "generator stalls not sampled"
    return f"the generator's own stalls p99 {lag['p99_ms']:.1f} ms, max {lag['max_ms']:.0f} ms"


def report_capacity(capacity: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(
        f"  capacity: students thinking {capacity['think_time']} between clicks, each an asyncio task of the "
        f"generator, all over {capacity['connections']} keep-alive connections to the gateway; "
        f"{capacity['window_seconds']:.0f} s per step\n"
    )
    for step in capacity["steps"]:
        kinds = step["by_kind"]
        answer, advance = kinds["answer"], kinds["advance"]
        shares = ", ".join(f"{name} {share:.0%}" for name, share in step["cpu_share"].items())
        out(
            f"    {step['students']:6d} students: {step['answers_per_second']:5.0f} answers/s, answer p50 "
            f"{answer['p50_ms'] or float('nan'):.1f} ms p99 {answer['p99_ms'] or float('nan'):.1f} ms "
            f"({answer['errors']} errors), {advance['requests']} advances p50 "
            f"{advance['p50_ms'] or float('nan'):.1f} ms p99 {advance['p99_ms'] or float('nan'):.1f} ms "
            f"({advance['errors']} errors): {'within' if step['within_targets'] else 'BEYOND'} the targets; "
            f"CPU {shares}; {generator_stalls(step)}\n"
        )
        for sample in step["error_samples"]:
            out(f"      error: {sample}\n")
    students = capacity["capacity_students"]
    out(
        f"  capacity (answer p99 <= {CAPACITY_ANSWER_P99_MS:.0f} ms, "
        f"advance p99 <= {CAPACITY_ADVANCE_P99_MS:.0f} ms): "
        f"{students} students ({students / THINK_MEAN_SECONDS:.0f} answers/s); target >= 10,000: "
        f"{'met' if students >= 10000 else 'MISSED or not reached by the steps'}\n"
    )


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


def save(rows: list[Row], memory: dict[str, float], summaries: dict[str, Any], machine: dict[str, Any]) -> Path:
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
        **summaries,
    }
    path.write_text(json.dumps(document, indent=2, allow_nan=False, default=str) + "\n")
    return path


def run(plan: Plan) -> Path:
    with tempfile.TemporaryDirectory(prefix="exam-bench-") as tmp:
        workdir = Path(tmp)
        stack = Stack(workdir, build_demo_bank(workdir / "item_bank.db"), TOKEN_KEY)
        plain_port_file = workdir / "plain.port"
        plain = multiprocessing.get_context("spawn").Process(target=plain_server, args=(str(plain_port_file),))
        plain.start()
        try:
            stack.start()
            plain_port = wait_port(plain_port_file, plain.is_alive)
            # The generator on the services' loop: the CPU it takes from the machine is taken from the stack.
            rows, summaries = run_event_loop(measure(stack, plain_port, plan))
            # The kernel updates a process's high-water mark lazily: a later reading may be a little below the
            # exam's.
            exam_memory = summaries["exam_peak_rss_mb"]
            memory = {name: max(mb, exam_memory[name]) for name, mb in peak_memory_mb(stack.pids()).items()}
        finally:
            plain.terminate()
            plain.join()
            stack.stop()
    machine = machine_info()
    report(rows, memory, summaries, machine)
    path = save(rows, memory, summaries, machine)
    sys.stdout.write(f"  saved {path.relative_to(REPO_ROOT)}\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.exam_bench", description=__doc__)
    parser.add_argument(
        "--students",
        type=int,
        default=int(os.environ.get("EXAM_BENCH_STUDENTS", DEFAULT_STUDENTS)),
        help="students in each simulated exam, closed-loop and paced "
        f"(env EXAM_BENCH_STUDENTS; default {DEFAULT_STUDENTS})",
    )
    parser.add_argument(
        "--paced-fractions",
        default=os.environ.get("EXAM_BENCH_PACED_FRACTIONS", ",".join(f"{f:g}" for f in DEFAULT_PACED_FRACTIONS)),
        help="paced rows at these shares of the closed loop's answers/s, comma-separated; empty leaves them out "
        "(env EXAM_BENCH_PACED_FRACTIONS; default %(default)s)",
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=float(os.environ.get("EXAM_BENCH_PACED_RATE", 0)),
        help="one paced row at this many answers/s instead of the fractions (env EXAM_BENCH_PACED_RATE)",
    )
    parser.add_argument(
        "--capacity-steps",
        default=os.environ.get("EXAM_BENCH_CAPACITY_STEPS", ",".join(str(n) for n in DEFAULT_CAPACITY_STEPS)),
        help="student counts of the capacity row, tried in order until one misses; empty leaves it out "
        "(env EXAM_BENCH_CAPACITY_STEPS; default %(default)s)",
    )
    parser.add_argument(
        "--capacity-window",
        type=float,
        default=CAPACITY_WINDOW_SECONDS,
        help="seconds each capacity step is measured (default %(default)g)",
    )
    args = parser.parse_args(argv if argv is not None else [])
    if args.paced_rate < 0:
        parser.error("--paced-rate must be >= 0")
    plan = Plan(
        students=args.students,
        paced_fractions=tuple(float(f) for f in args.paced_fractions.split(",") if f.strip()),
        paced_rate=args.paced_rate,
        capacity_steps=tuple(int(n) for n in args.capacity_steps.split(",") if n.strip()),
        capacity_window=args.capacity_window,
    )
    run(plan)


if __name__ == "__main__":
    main(sys.argv[1:])
