"""A room's module change: N students at the end of Reading's router advance at once, or as a paced row's do."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import percentiles
from bench.exam_bench import PASSWORD, SETUP_CONCURRENCY, TOKEN_KEY, Cpu, Http, create_students, machine_info
from launcher.answers import answer_for, objective
from launcher.procs import build_demo_bank
from launcher.stack import Stack

DEFAULT_STUDENTS = 500
DEFAULT_ROUNDS = 3
# The modules a student may go to next are assembled while it answers (session_service's preparer); a burst is
# sent only once session_service has gone quiet, so that it measures the requests and not that work.
QUIET_SHARE = 0.05
QUIET_SAMPLE_SECONDS = 0.5
QUIET_LIMIT_SECONDS = 60.0


@dataclass
class Student:
    """A student at the end of Reading's router module: every objective item answered, the last one kept to be
    answered again (a new revision)."""

    token: str
    sid: str
    item_id: str
    answer: dict[str, Any]


@dataclass
class Burst:
    """N requests sent at once: how long they took together, each one's latency, and CPU ms per request by process
    (the load generator included: it shares the machine)."""

    kind: str
    seconds: float
    latencies_ms: list[float]
    cpu_ms: dict[str, float]

    @property
    def stack_ms(self) -> float:
        return sum(self.cpu_ms.values())


@dataclass
class PacedChange:
    """A paced row's module change: every student answered its last item again at a random moment of one answer
    interval and advanced the moment that answer was acknowledged; each answer's and advance's latency, and each
    process's share of a core from the first request to the last reply."""

    rate: float
    seconds: float
    answers_ms: list[float]
    advances_ms: list[float]
    shares: dict[str, float]


async def seat(http: Http, username: str, gate: asyncio.Semaphore) -> Student:
    """Sign in, start a full test and answer every objective item of its first module (setup, not measured)."""
    async with gate:
        login = await http.call("POST", "/api/auth/token", body={"username": username, "password": PASSWORD})
        token = login["accessToken"]
        create = {"scope": "SESSION_SCOPE_FULL_TEST", "requestId": uuid.uuid4().hex}
        session = await http.call("POST", "/api/sessions", token, create)
        module = session["currentModule"]
        last: tuple[str, dict[str, Any]] | None = None
        for item in module["items"]:
            if objective(module, item):
                last = item["itemId"], answer_for(item)
                body = {"answer": last[1], "requestId": uuid.uuid4().hex, "elapsedMs": 1000}
                await http.call("PUT", f"/api/sessions/{session['sessionId']}/responses/{last[0]}", token, body)
    if last is None:
        raise RuntimeError(f"{username}: the first module has no objective item")
    return Student(token, session["sessionId"], *last)


async def quiet(pids: dict[str, int]) -> None:
    """Wait until session_service uses less than QUIET_SHARE of a core (its preparer done), at most
    QUIET_LIMIT_SECONDS."""
    give_up = time.perf_counter() + QUIET_LIMIT_SECONDS
    while time.perf_counter() < give_up:
        before = Cpu.now(pids)
        await asyncio.sleep(QUIET_SAMPLE_SECONDS)
        if Cpu.now(pids).shares_since(before, QUIET_SAMPLE_SECONDS)["session_service"] < QUIET_SHARE:
            return
    raise RuntimeError(f"session_service did not go quiet within {QUIET_LIMIT_SECONDS:g} s")


async def burst(kind: str, calls: list[Callable[[], Awaitable[Any]]], pids: dict[str, int]) -> Burst:
    """Every call at once; any failure fails the bench (a burst with errors measures something else)."""
    latencies: list[float] = []

    async def timed(call: Callable[[], Awaitable[Any]]) -> None:
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1e3)

    before = Cpu.now(pids)
    started = time.perf_counter()
    await asyncio.gather(*(timed(call) for call in calls))
    seconds = time.perf_counter() - started
    shares = Cpu.now(pids).shares_since(before, seconds)
    return Burst(
        kind, seconds, latencies, {name: share * seconds * 1e3 / len(calls) for name, share in shares.items()}
    )


def answer_again(http: Http, s: Student) -> Callable[[], Awaitable[Any]]:
    """The student's last item answered again (a new revision, a new request id)."""
    body = {"answer": s.answer, "requestId": uuid.uuid4().hex, "elapsedMs": 1000}
    return lambda: http.call("PUT", f"/api/sessions/{s.sid}/responses/{s.item_id}", s.token, body)


def advance(http: Http, s: Student) -> Callable[[], Awaitable[Any]]:
    """The student's move to its next module."""
    return lambda: http.call("POST", f"/api/sessions/{s.sid}:advance", s.token, {"requestId": uuid.uuid4().hex})


async def seat_round(http: Http, stack: Stack, students: int) -> list[Student]:
    """New students, each at the end of Reading's router (setup, not measured)."""
    assert stack.session is not None
    usernames = await create_students(stack.session.address, students, f"change-{uuid.uuid4().hex[:6]}")
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    return await asyncio.gather(*(seat(http, name, gate) for name in usernames))


async def one_round(http: Http, stack: Stack, students: int) -> tuple[Burst, Burst]:
    """New students to the end of Reading's router; then each answers its last item again, all at once; then each
    advances, all at once."""
    seated = await seat_round(http, stack, students)
    pids = stack.pids()
    await quiet(pids)
    answers = await burst("answer", [answer_again(http, s) for s in seated], pids)
    await quiet(pids)
    advances = await burst("advance", [advance(http, s) for s in seated], pids)
    return answers, advances


async def paced_round(http: Http, stack: Stack, students: int, rate: float, seed: int) -> PacedChange:
    """New students to the end of Reading's router; then each answers its last item again at a uniform moment of
    one answer interval (students / rate seconds, as in exam_bench's paced rows) and advances as soon as that
    answer is acknowledged: a paced row's Reading router change, with nothing else going on."""
    seated = await seat_round(http, stack, students)
    pids = stack.pids()
    await quiet(pids)
    rng = random.Random(seed)
    moments = [rng.uniform(0.0, len(seated) / rate) for _ in seated]
    answers: list[float] = []
    advances: list[float] = []

    async def student(s: Student, at: float) -> None:
        await asyncio.sleep(max(0.0, started + at - time.perf_counter()))
        sent = time.perf_counter()
        await answer_again(http, s)()
        answered = time.perf_counter()
        await advance(http, s)()
        answers.append((answered - sent) * 1e3)
        advances.append((time.perf_counter() - answered) * 1e3)

    before = Cpu.now(pids)
    started = time.perf_counter()
    await asyncio.gather(*(student(s, at) for s, at in zip(seated, moments, strict=True)))
    seconds = time.perf_counter() - started
    return PacedChange(rate, seconds, answers, advances, Cpu.now(pids).shares_since(before, seconds))


async def measure(stack: Stack, students: int, rounds: int) -> list[tuple[Burst, Burst]]:
    async with client(stack, students) as http:
        return [await one_round(http, stack, students) for _ in range(rounds)]


async def measure_paced(stack: Stack, students: int, rounds: int, rate: float) -> list[PacedChange]:
    async with client(stack, students) as http:
        return [await paced_round(http, stack, students, rate, seed) for seed in range(1, rounds + 1)]


@contextlib.asynccontextmanager
async def client(stack: Stack, students: int) -> AsyncIterator[Http]:
    """The generator's HTTP client: a connection per student, so that none waits for one."""
    assert stack.gateway is not None
    connector = aiohttp.TCPConnector(limit=students + 16)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield Http(stack.gateway.url, session)


def report(students: int, results: list[tuple[Burst, Burst]]) -> None:
    out = sys.stdout.write
    machine = machine_info()
    out(
        f"{students} students at the end of Reading's router, all at once; {machine['cpus']} CPUs "
        f"({machine['cpu_model']}); the generator shares the machine\n"
    )
    names = list(results[0][0].cpu_ms)
    out(
        f"  {'round':<6}{'burst':<9}{'all in ms':>10}{'p50 ms':>8}{'p99 ms':>8}   CPU ms per request: "
        + ", ".join(names)
        + ", whole stack\n"
    )
    for number, pair in enumerate(results, 1):
        for b in pair:
            p50, p99 = percentiles(b.latencies_ms)
            cpu = " / ".join(f"{b.cpu_ms[name]:.2f}" for name in names)
            out(
                f"  {number:<6}{b.kind:<9}{b.seconds * 1e3:>10.0f}{p50:>8.0f}{p99:>8.0f}"
                f"   {cpu} / {b.stack_ms:.2f}\n"
            )
    stack_ratio = statistics.median(adv.stack_ms / ans.stack_ms for ans, adv in results)
    session_ratio = statistics.median(
        adv.cpu_ms["session_service"] / ans.cpu_ms["session_service"] for ans, adv in results
    )
    out(
        f"  ratio (median of the rounds): an advance costs {stack_ratio:.2f} answers of the whole stack's CPU, "
        f"{session_ratio:.2f} of session_service's\n"
    )
    out(
        "  a paced room changing modules together sends every student's advance within one answer interval: that "
        "interval costs 1 + this ratio intervals of answers (docs/PERFORMANCE.md)\n"
    )


def report_paced(students: int, results: list[PacedChange]) -> None:
    out = sys.stdout.write
    machine = machine_info()
    rate = results[0].rate
    out(
        f"{students} students at the end of Reading's router, each answering its last item again at a random "
        f"moment of one {students / rate:.2f}-s interval ({rate:g} answers/s) and advancing once it is "
        f"acknowledged; {machine['cpus']} CPUs ({machine['cpu_model']}); the generator shares the machine\n"
    )
    names = list(results[0].shares)
    out(
        f"  {'round':<6}{'all in ms':>10}{'answer p50 / p99 ms':>22}{'advance p50 / p99 ms':>23}"
        + "   share of a core: "
        + ", ".join(names)
        + "\n"
    )
    for number, change in enumerate(results, 1):
        answer = " / ".join(f"{ms:.1f}" for ms in percentiles(change.answers_ms))
        advance = " / ".join(f"{ms:.0f}" for ms in percentiles(change.advances_ms))
        shares = " / ".join(f"{change.shares[name]:.2f}" for name in names)
        out(f"  {number:<6}{change.seconds * 1e3:>10.0f}{answer:>22}{advance:>23}   {shares}\n")
    out(
        "  issue 22's 60% row: answer p99 <= 100 ms, advance p99 <= 500 ms; with the rate at 60% of exam_bench's "
        "closed loop, this is that row's Reading router change alone (docs/PERFORMANCE.md)\n"
    )


def run(students: int, rounds: int, paced_rate: float | None) -> None:
    with tempfile.TemporaryDirectory(prefix="module-change-bench-") as tmp:
        workdir = Path(tmp)
        stack = Stack(workdir, build_demo_bank(workdir / "item_bank.db"), TOKEN_KEY)
        try:
            stack.start()
            if paced_rate is None:
                results = asyncio.run(measure(stack, students, rounds))
            else:
                changes = asyncio.run(measure_paced(stack, students, rounds, paced_rate))
        finally:
            stack.stop()
    if paced_rate is None:
        report(students, results)
    else:
        report_paced(students, changes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.module_change_bench", description=__doc__)
    parser.add_argument("--students", type=int, default=DEFAULT_STUDENTS, help="students (default %(default)s)")
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds, new students each (default %(default)s)"
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=None,
        metavar="RATE",
        help="instead of the two bursts: each student answers once more at a random moment of one interval of "
        "students / RATE seconds and then advances, as a paced row at RATE answers/s meets the change",
    )
    args = parser.parse_args(argv if argv is not None else [])
    if args.students < 1 or args.rounds < 1:
        parser.error("--students and --rounds must be at least 1")
    if args.paced_rate is not None and not args.paced_rate > 0:
        parser.error("--paced-rate must be above 0")
    run(args.students, args.rounds, args.paced_rate)


if __name__ == "__main__":
    main(sys.argv[1:])
