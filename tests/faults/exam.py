"""Students answering through the gateway, a record of every attempt, and what the user database holds."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.answers import answer_for
from launcher.stack import Stack
from tests.support.tokens import metadata, token
from toefl_core.auth import Role

SETUP_CONCURRENCY = 16
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=30)
UNTIL_STOPPED = 1_000_000


@dataclass(frozen=True)
class Student:
    user_id: str
    token: str
    session_id: str
    # Objective items of the open Reading router module, each with a well-formed answer.
    answers: tuple[tuple[str, dict[str, Any]], ...]


@dataclass
class Attempt:
    """One PUT of an answer: None as status when no HTTP answer came back (connection refused or reset)."""

    student: Student
    item_id: str
    answer: dict[str, Any]
    request_id: str
    status: int | None = None
    reply: Any = None
    # time.monotonic() when the answer (or the failure) came back.
    finished: float = 0.0

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, access_token: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=bearer(access_token)) as response:
        text = await response.text()
        return response.status, json.loads(text) if response.content_type == "application/json" else text


async def open_students(stack: Stack, count: int) -> list[Student]:
    """Students created by an admin over gRPC, each with a Reading section session opened through the gateway."""
    assert stack.session is not None and stack.gateway is not None
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    base = stack.gateway.url
    async with (
        grpc.aio.insecure_channel(stack.session.address) as channel,
        aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http,
    ):
        stub = session_service_pb2_grpc.SessionServiceStub(channel)

        async def one() -> Student:
            async with gate:
                user = await stub.CreateUser(
                    pb.CreateUserRequest(
                        user=pb.User(
                            username=f"fault-{uuid.uuid4().hex[:12]}", role=pb.ROLE_STUDENT, password="x" * 12
                        )
                    ),
                    metadata=metadata(Role.ADMIN, "usr-fault-admin"),
                )
                access = token(Role.STUDENT, user.user_id)
                body = {
                    "scope": "SESSION_SCOPE_SECTION",
                    "section": "SECTION_READING",
                    "requestId": uuid.uuid4().hex,
                }
                status, session = await call(http, "POST", f"{base}/api/sessions", access, body)
                assert status == 200, session
            items = session["currentModule"]["items"]
            return Student(
                user.user_id, access, session["sessionId"], tuple((i["itemId"], answer_for(i)) for i in items)
            )

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def put(
    http: aiohttp.ClientSession, base: str, attempt: Attempt, headers: dict[str, str] | None = None
) -> None:
    """Send one attempt; its status and reply are recorded, a broken connection is status None."""
    url = f"{base}/api/sessions/{attempt.student.session_id}/responses/{attempt.item_id}"
    body = {"answer": attempt.answer, "requestId": attempt.request_id}
    try:
        async with http.put(url, json=body, headers={**bearer(attempt.student.token), **(headers or {})}) as reply:
            attempt.status = reply.status
            attempt.reply = await reply.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, json.JSONDecodeError) as exc:
        attempt.status, attempt.reply = None, repr(exc)
    attempt.finished = time.monotonic()


async def answer_stream(
    base: Callable[[], str], students: list[Student], per_student: int, stop: asyncio.Event
) -> list[Attempt]:
    """Each student answers its items in turn, a new request id per PUT, until `stop` or `per_student` answers."""
    attempts: list[Attempt] = []
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT, connector=aiohttp.TCPConnector(limit=0)) as http:

        async def student(s: Student) -> None:
            for n in range(per_student):
                if stop.is_set():
                    return
                item_id, answer = s.answers[n % len(s.answers)]
                attempt = Attempt(s, item_id, answer, uuid.uuid4().hex)
                attempts.append(attempt)
                await put(http, base(), attempt)

        await asyncio.gather(*(student(s) for s in students))
    return attempts


async def retry(base: str, attempts: list[Attempt]) -> None:
    """Send each attempt again with its own request id, as a client that never saw an answer does."""
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        await asyncio.gather(*(put(http, base, a) for a in attempts))


def stored(database: Path) -> dict[str, tuple[int, int]]:
    """request id -> (rows with that id, revision), read through a read-only connection beside the service."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT request_id, revision FROM responses").fetchall()
    finally:
        conn.close()
    counts = Counter(request_id for request_id, _ in rows)
    return {request_id: (counts[request_id], revision) for request_id, revision in rows}


def check_exactly_once(attempts: list[Attempt], database: Path) -> dict[str, int]:
    """Every acknowledged answer is stored once, at the revision its acknowledgement named; returns counts."""
    held = stored(database)
    acknowledged = [a for a in attempts if a.acknowledged]
    missing = [a.request_id for a in acknowledged if a.request_id not in held]
    assert missing == [], f"{len(missing)} acknowledged answers are not in the database"
    duplicated = sorted(rid for rid, (count, _) in held.items() if count != 1)
    assert duplicated == [], f"request ids stored more than once: {duplicated[:5]}"
    wrong = [a.request_id for a in acknowledged if held[a.request_id][1] != a.reply["response"]["revision"]]
    assert wrong == [], f"stored at another revision than acknowledged: {wrong[:5]}"
    return {"acknowledged": len(acknowledged), "lost": len(missing), "duplicated": len(duplicated)}


# What a client may see when a process dies under its request: no answer, or the gateway's 502/503.
CRASH_STATUSES = {None, 502, 503}


async def fault_round(
    stack: Stack,
    students: list[Student],
    fault_after: float,
    fault: Callable[[], None],
    recover: Callable[[], None],
) -> dict[str, int]:
    """Students answer until `fault` strikes after `fault_after` s; after `recover`, unanswered ones are retried.

    Checks: every acknowledged answer is stored once at its acknowledged revision; a retry of an unacknowledged
    request is reported as replayed exactly when the crashed process had committed it, and then nothing is
    written twice.
    """
    assert stack.gateway is not None
    base = stack.gateway.url
    stop = asyncio.Event()
    # Bounded by the fault, not by a count: however fast the machine, answers are in flight when it strikes.
    baseline = len(stored(stack.user_db))
    stream = asyncio.create_task(answer_stream(lambda: base, students, UNTIL_STOPPED, stop))
    # The kill point counts from the first answer on disk, not from the start: on a loaded machine the students
    # may need longer than `fault_after` to send their first answers, and a fault before that tests nothing.
    for _ in range(1200):  # at most about a minute
        if len(stored(stack.user_db)) > baseline:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(fault_after)
    fault()
    stop.set()
    attempts = await stream
    await asyncio.to_thread(recover)

    before = stored(stack.user_db)
    counts = check_exactly_once(attempts, stack.user_db)
    unacknowledged = [a for a in attempts if not a.acknowledged]
    assert counts["acknowledged"] > 0 and unacknowledged, "the fault must strike while answers are in flight"
    assert {a.status for a in unacknowledged} <= CRASH_STATUSES, {a.status for a in unacknowledged}
    committed_unacknowledged = sum(a.request_id in before for a in unacknowledged)

    await retry(stack.gateway.url, unacknowledged)
    assert [a.reply for a in unacknowledged if not a.acknowledged] == []
    misreported = [a.request_id for a in unacknowledged if a.reply["replayed"] != (a.request_id in before)]
    assert misreported == []
    after = check_exactly_once(attempts, stack.user_db)
    assert after["acknowledged"] == len(attempts)
    return {**counts, "unacknowledged": len(unacknowledged), "committed_unacknowledged": committed_unacknowledged}
