"""A sitting watched live: N students answer at a steady pace, unwatched, then with 5 proctors on its SSE view."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from google.protobuf import timestamp_pb2
from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from bench.common import percentiles
from bench.exam_bench import TOKEN_KEY, sleep_until
from launcher.answers import answer_for
from launcher.procs import build_demo_bank
from launcher.stack import Stack
from toefl_core.auth import Role, auth_metadata, mint_token

DEFAULT_STUDENTS = 500
PROCTORS = 5
# Each student answers one item every ANSWER_PERIOD seconds, the class spread evenly over it: a steady pace.
ANSWER_PERIOD_SECONDS = 10.0
PHASE_SECONDS = 30.0
SETUP_CONCURRENCY = 16
# Issue 19's targets: the answers' p99 with watchers at most this multiple of the one without; views within 2 s.
ANSWER_P99_RATIO_TARGET = 1.2
UPDATE_DELAY_TARGET_MS = 2000.0


@dataclass
class Student:
    user_id: str
    token: str
    session_id: str
    answers: list[tuple[str, dict[str, Any]]]
    answered: int = 0


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    # (student id, distinct answered count after it, perf_counter at its acknowledgement)
    acks: list[tuple[str, int, float]] = field(default_factory=list)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _setup(stack: Stack, count: int, http: aiohttp.ClientSession) -> tuple[str, str, list[Student]]:
    """A teacher's class of `count` students, a Reading sitting open now, every student in its router module."""
    assert stack.session is not None and stack.gateway is not None
    base = stack.gateway.url
    admin = auth_metadata(mint_token(TOKEN_KEY, subject="bench-admin", role=Role.ADMIN))
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    async with grpc.aio.insecure_channel(stack.session.address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        teacher = await stub.CreateUser(
            pb.CreateUserRequest(user=pb.User(username="bench-teacher", role=pb.ROLE_TEACHER, password="x" * 12)),
            metadata=admin,
        )
        room = await stub.CreateClass(
            pb.CreateClassRequest(name="Bench room", teacher_id=teacher.user_id), metadata=admin
        )
        opens = timestamp_pb2.Timestamp()
        opens.FromMilliseconds(int(time.time() * 1000) - 60_000)
        closes = timestamp_pb2.Timestamp()
        closes.FromMilliseconds(opens.ToMilliseconds() + 4 * 3_600_000)
        sitting = await stub.CreateSitting(
            pb.CreateSittingRequest(
                sitting=pb.Sitting(
                    class_id=room.class_id,
                    scope=pb.SESSION_SCOPE_SECTION,
                    section=item_pb2.SECTION_READING,
                    open_time=opens,
                    close_time=closes,
                )
            ),
            metadata=admin,
        )

        async def one(n: int) -> Student:
            async with gate:
                user = await stub.CreateUser(
                    pb.CreateUserRequest(
                        user=pb.User(username=f"bench-sit-{n}", role=pb.ROLE_STUDENT, password="x" * 12),
                        class_id=room.class_id,
                    ),
                    metadata=admin,
                )
                token = mint_token(TOKEN_KEY, subject=user.user_id, role=Role.STUDENT)
                body = {"sittingId": sitting.sitting_id, "requestId": uuid.uuid4().hex}
                async with http.post(f"{base}/api/sessions", json=body, headers=_bearer(token)) as r:
                    session = await r.json()
                    if r.status != 200:
                        raise RuntimeError(f"start: HTTP {r.status} {session}")
            items = session["currentModule"]["items"]
            return Student(
                user.user_id, token, session["sessionId"], [(i["itemId"], answer_for(i)) for i in items]
            )

        students = list(await asyncio.gather(*(one(n) for n in range(count))))
    return sitting.sitting_id, mint_token(TOKEN_KEY, subject=teacher.user_id, role=Role.TEACHER), students


async def _answer(http: aiohttp.ClientSession, base: str, students: list[Student], phase: Phase) -> None:
    """Every student answers its next item each ANSWER_PERIOD, offsets spread over the period."""
    start = time.perf_counter() + 0.5
    rounds = int(PHASE_SECONDS / ANSWER_PERIOD_SECONDS)

    async def student(index: int, s: Student) -> None:
        for k in range(rounds):
            await sleep_until(start + index * ANSWER_PERIOD_SECONDS / len(students) + k * ANSWER_PERIOD_SECONDS)
            if s.answered >= len(s.answers):
                return
            item_id, answer = s.answers[s.answered]
            url = f"{base}/api/sessions/{s.session_id}/responses/{item_id}"
            body = {"answer": answer, "requestId": uuid.uuid4().hex}
            sent = time.perf_counter()
            async with http.put(url, json=body, headers=_bearer(s.token)) as reply:
                await reply.read()
                done = time.perf_counter()
                if reply.status != 200:
                    phase.failures += 1
                    continue
            s.answered += 1
            phase.latencies.append((done - sent) * 1e3)
            phase.acks.append((s.user_id, s.answered, done))

    await asyncio.gather(*(student(i, s) for i, s in enumerate(students)))


async def _watch(
    http: aiohttp.ClientSession, base: str, sitting_id: str, token: str, views: list[tuple[float, dict[str, int]]]
) -> None:
    """One proctor's SSE stream: each view's arrival time and every seat's answered count (the changed seats merged
    into the room), until cancelled."""
    url = f"{base}/api/sittings/{sitting_id}:watch"
    headers = {**_bearer(token), "Accept": "text/event-stream", "Grpc-Timeout": "60S"}
    while True:
        room: dict[str, int] = {}
        async with http.get(url, headers=headers) as response:
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while b"\n\n" in buffer:
                    event, buffer = buffer.split(b"\n\n", 1)
                    arrived = time.perf_counter()
                    if not event.startswith(b"data: "):
                        continue
                    view = json.loads(event[len(b"data: ") :])["result"]
                    if view.get("full"):
                        room.clear()
                    room.update({s["studentId"]: s.get("answeredCount", 0) for s in view.get("seats", [])})
                    views.append((arrived, dict(room)))


def _update_delays(acks: list[tuple[str, int, float]], views: list[tuple[float, dict[str, int]]]) -> list[float]:
    """Per acknowledged answer: ms until the first view (of one proctor) that shows it."""
    delays = []
    for student_id, count, acked in acks:
        shown = next((t for t, seats in views if t >= acked and seats.get(student_id, 0) >= count), None)
        if shown is not None:
            delays.append((shown - acked) * 1e3)
    return delays


async def _measure(stack: Stack, count: int) -> dict[str, Any]:
    assert stack.gateway is not None
    base = stack.gateway.url
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=90)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        sitting_id, proctor, students = await _setup(stack, count, http)
        alone = Phase()
        await _answer(http, base, students, alone)
        watched = Phase()
        views: list[list[tuple[float, dict[str, int]]]] = [[] for _ in range(PROCTORS)]
        async with aiohttp.ClientSession(timeout=timeout) as watchers:
            tasks = [asyncio.create_task(_watch(watchers, base, sitting_id, proctor, v)) for v in views]
            await asyncio.sleep(2.0)
            await _answer(http, base, students, watched)
            await asyncio.sleep(2.0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    delays = [d for v in views for d in _update_delays(watched.acks, v)]
    p50_alone, p99_alone = percentiles(alone.latencies)
    p50_watched, p99_watched = percentiles(watched.latencies)
    delay_p50, delay_p99 = percentiles(delays) if delays else (float("nan"), float("nan"))
    return {
        "students": count,
        "answers_per_s": count / ANSWER_PERIOD_SECONDS,
        "alone": {"answers": len(alone.latencies), "failures": alone.failures, "p50": p50_alone, "p99": p99_alone},
        "watched": {
            "answers": len(watched.latencies),
            "failures": watched.failures,
            "p50": p50_watched,
            "p99": p99_watched,
        },
        "views": [len(v) for v in views],
        "update_delay": {"samples": len(delays), "p50": delay_p50, "p99": delay_p99},
    }


def _report(result: dict[str, Any]) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    alone, watched, delay = result["alone"], result["watched"], result["update_delay"]
    ratio = watched["p99"] / alone["p99"] if alone["p99"] else float("nan")
    print(
        f"sitting benchmark: {result['students']} students answering {result['answers_per_s']:.0f}/s through the "
        f"gateway ({os.cpu_count()} cores, load average {load})"
    )
    print(f"  {'phase':<28} {'answers':>8} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for name, row in (("unwatched", alone), (f"watched by {PROCTORS} proctors", watched)):
        print(f"  {name:<28} {row['answers']:>8} {row['failures']:>7} {row['p50']:>8.1f} {row['p99']:>8.1f}")
    verdict = "within" if ratio <= ANSWER_P99_RATIO_TARGET else "OVER"
    print(f"  answer p99 watched / unwatched: {ratio:.2f} ({verdict} the target {ANSWER_P99_RATIO_TARGET})")
    verdict = "within" if delay["p99"] <= UPDATE_DELAY_TARGET_MS else "OVER"
    print(
        f"  update delay (answer acknowledged -> a proctor's view shows it): p50 {delay['p50']:.0f} ms, "
        f"p99 {delay['p99']:.0f} ms over {delay['samples']} ({verdict} the target "
        f"{UPDATE_DELAY_TARGET_MS:.0f} ms); views per proctor {result['views']}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=DEFAULT_STUDENTS)
    args = parser.parse_args(sys.argv[1:] if argv is None and __name__ == "__main__" else argv or [])
    with tempfile.TemporaryDirectory(prefix="sitting-bench-") as tmp:
        workdir = Path(tmp)
        bank = build_demo_bank(workdir / "item_bank.db")
        stack = Stack(workdir / "stack", bank, TOKEN_KEY, session_env={"SESSION_FAST_PASSWORD_HASHING": "true"})
        try:
            stack.start()
            _report(asyncio.run(_measure(stack, args.students)))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
