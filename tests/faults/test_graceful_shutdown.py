"""SIGTERM to session_service while 50 students answer: nothing acknowledged is lost, nothing accepted is refused.

Every answer either is acknowledged and stored (at the revision the acknowledgement named), or is refused with
UNAVAILABLE before the service accepted it: not stored, and not the group commit's own refusal of an answer it
had already taken in (which is what a shutdown that stopped the writer before the grace period produced).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from dataclasses import dataclass

import grpc
from google.protobuf import json_format
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.stack import Stack
from session_service.batching import SHUTTING_DOWN
from tests.faults.exactly_once import stored
from tests.support.exam import Student
from toefl_core.auth import auth_metadata

STUDENTS = 50
RPC_TIMEOUT_SECONDS = 30.0


@dataclass
class Sent:
    """One SubmitResponse: the status code it got (OK for an acknowledgement) and when it was sent."""

    request_id: str
    started: float
    code: grpc.StatusCode | None = None
    details: str = ""
    revision: int = 0
    finished: float = 0.0


async def answer_until_refused(address: str, students: list[Student]) -> list[Sent]:
    """Each student answers its items in turn, a new request id each time, until its first refusal."""
    sent: list[Sent] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)

        async def student(s: Student) -> None:
            for n in range(1_000_000):
                item_id, answer = s.answers[n % len(s.answers)]
                record = Sent(uuid.uuid4().hex, time.monotonic())
                request = json_format.ParseDict(
                    {
                        "sessionId": s.session_id,
                        "itemId": item_id,
                        "answer": answer,
                        "requestId": record.request_id,
                    },
                    pb.SubmitResponseRequest(),
                )
                sent.append(record)
                try:
                    reply = await stub.SubmitResponse(
                        request, metadata=auth_metadata(s.token), timeout=RPC_TIMEOUT_SECONDS
                    )
                except grpc.aio.AioRpcError as exc:
                    record.code, record.details = exc.code(), exc.details() or ""
                    record.finished = time.monotonic()
                    return
                record.code, record.revision = grpc.StatusCode.OK, reply.response.revision
                record.finished = time.monotonic()

        await asyncio.gather(*(student(s) for s in students))
    return sent


async def test_sigterm_while_students_answer_loses_nothing(stack: Stack, students: list[Student]) -> None:
    assert stack.session is not None and stack.session.proc is not None
    process = stack.session.proc
    baseline = len(stored(stack.user_db))
    stream = asyncio.create_task(answer_until_refused(stack.session.address, students))
    # Counted from the first answer on disk, so that answers are in flight whatever the machine's speed.
    for _ in range(1200):
        if len(stored(stack.user_db)) > baseline:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(random.uniform(0.2, 1.0))
    terminated = time.monotonic()
    process.send_signal(signal.SIGTERM)
    sent = await asyncio.wait_for(stream, timeout=120)
    assert await asyncio.to_thread(process.wait, 60) == 0, stack.session.log_text()[-3000:]

    held = stored(stack.user_db)
    acknowledged = [s for s in sent if s.code == grpc.StatusCode.OK]
    refused = [s for s in sent if s.code != grpc.StatusCode.OK]
    lost = [s.request_id for s in acknowledged if s.request_id not in held]
    assert lost == [], f"{len(lost)} acknowledged answers are not in the database"
    assert [s.request_id for s in acknowledged if held[s.request_id] != (1, s.revision)] == []
    assert {s.code for s in refused} == {grpc.StatusCode.UNAVAILABLE}, {(s.code, s.details) for s in refused}
    accepted_then_refused = [s.details for s in refused if SHUTTING_DOWN in s.details]
    assert accepted_then_refused == [], f"{len(accepted_then_refused)} answers taken in, then refused"
    assert [s.request_id for s in refused if s.request_id in held] == []
    # Every student ended on a refusal; the stream ran on both sides of the signal.
    assert len(refused) == STUDENTS and acknowledged
    in_grace = sum(s.started < terminated < s.finished for s in acknowledged)
    print(f"SIGTERM: {len(acknowledged)} acknowledged ({in_grace} in the grace period), {len(refused)} refused")
