"""Scoring: EAP of a 50-item section beside a NumPy dot; RescoreSession and BatchRescoreSessions throughput."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import grpc
import numpy as np
from google.protobuf.field_mask_pb2 import FieldMask
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import scoring_service_pb2_grpc, session_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb

from bench.session_bench import TOKEN_KEY, start_services
from scoring_jobs.common import JobSettings, Services, StateFile
from scoring_jobs.rescore import RescoreFilters, run_rescore
from toefl_core.auth import Role, auth_metadata, mint_token
from toefl_core.irt import GRID, PolytomousResponse, eap

SECTION_ITEMS = 50
SESSIONS = 200
SETUP_CONCURRENCY = 24
RESCORE_CONCURRENCY = 64
REFERENCE_CALLS = 3000
# As the rescore job sends them: one page of ListFinishedSessions (at most 200) per call, one call at a time.
BATCH_SIZE = 200
BATCH_PASSES = 5
# Items recalibrated before each of the last passes, so that they write new score versions; a pass over changed
# parameters can be measured once per recalibration, so there are several.
RECALIBRATED_ITEMS = 40
RECALIBRATIONS = 3
T = TypeVar("T")
# Runs of the rescore job itself (a new run id each: computed, not replayed), in this process.
JOB_RUNS = 5


def eap_microseconds() -> tuple[float, float]:
    """Best-of-5 mean time of one EAP over a 50-item section (45 3PL, 5 GPCM), and of the NumPy reference."""
    rng = np.random.default_rng(2026)
    a = rng.normal(1.2, 0.25, 45).clip(0.5, 2.5)
    b = rng.normal(0, 1, 45)
    c = np.full(45, 0.2)
    u = rng.integers(0, 2, 45)
    polytomous = [
        PolytomousResponse(a=1.0, steps=tuple(sorted(rng.normal(0, 1, 5))), score=int(rng.integers(0, 6)))
        for _ in range(5)
    ]
    matrix = rng.normal(size=(SECTION_ITEMS, GRID.shape[0]))
    vector = rng.normal(size=SECTION_ITEMS)
    number = 2000

    def one_eap() -> None:
        eap(a=a, b=b, c=c, u=u, polytomous=polytomous)

    def one_dot() -> None:
        np.dot(vector, matrix)

    best_eap = min(timeit.repeat(one_eap, number=number, repeat=5)) / number * 1e6
    best_dot = min(timeit.repeat(one_dot, number=number, repeat=5)) / number * 1e6
    return best_eap, best_dot


def _md(role: Role, subject: str) -> tuple[tuple[str, str], ...]:
    return auth_metadata(mint_token(TOKEN_KEY, subject=subject, role=role))


def _answer(item: item_pb2.Item, n: int) -> pb.Answer:
    key = item.answer_key
    if item.task_type == item_pb2.TASK_TYPE_COMPLETE_THE_WORDS:
        return pb.Answer(completions=pb.StringList(values=list(key.completions)))
    if item.task_type == item_pb2.TASK_TYPE_BUILD_A_SENTENCE:
        return pb.Answer(word_sequence=pb.StringList(values=list(key.correct_sequence)))
    if item.content.options:
        return pb.Answer(choice_index=(key.correct_option + n % 2) % len(item.content.options))
    if item.task_type in (item_pb2.TASK_TYPE_WRITE_AN_EMAIL, item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION):
        return pb.Answer(text="Thank you for your message; I will join the group on Friday.")
    return pb.Answer(speech=pb.SpeechResponse(audio_ref=f"audio/bench/{item.item_id}.webm", duration_ms=3000))


class Timer(Protocol):
    """Wraps each call of a full test; `kind` names it: "create session", "answer", "advance" or "finish"."""

    def __call__(self, kind: str, call: Awaitable[T], /) -> Awaitable[T]: ...


async def _untimed(_kind: str, call: Awaitable[T]) -> T:
    return await call


async def take_full_test(
    sessions: session_service_pb2_grpc.SessionServiceAsyncStub,
    items: item_service_pb2_grpc.ItemServiceAsyncStub,
    n: int,
    *,
    prefix: str,
    timed: Timer = _untimed,
) -> str:
    """A new student's full test through the real RPCs, every item answered (from the FULL view), then finished."""
    user = await sessions.CreateUser(
        pb.CreateUserRequest(
            user=pb.User(username=f"{prefix}-{n}-{uuid.uuid4().hex[:6]}", role=pb.ROLE_STUDENT, password="x" * 12)
        ),
        metadata=_md(Role.ADMIN, "bench-admin"),
    )
    md = _md(Role.STUDENT, user.user_id)
    create = pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_FULL_TEST)
    session = await timed("create session", sessions.CreateSession(create, metadata=md))
    while session.HasField("current_module"):
        refs = [
            item_service_pb2.ItemRef(item_id=i.item_id, revision=i.revision) for i in session.current_module.items
        ]
        full = await items.BatchGetItems(
            item_service_pb2.BatchGetItemsRequest(items=refs, view=item_pb2.ITEM_VIEW_FULL),
            metadata=_md(Role.SERVICE, "bench"),
        )
        for k, item in enumerate(full.items):
            submit = pb.SubmitResponseRequest(
                session_id=session.session_id,
                item_id=item.item_id,
                answer=_answer(item, n + k),
                request_id=uuid.uuid4().hex,
            )
            await timed("answer", sessions.SubmitResponse(submit, metadata=md))
        advance = pb.AdvanceModuleRequest(session_id=session.session_id, request_id=uuid.uuid4().hex)
        session = await timed("advance", sessions.AdvanceModule(advance, metadata=md))
    finish = pb.FinishSessionRequest(session_id=session.session_id)
    await timed("finish", sessions.FinishSession(finish, metadata=md))
    return session.session_id


async def create_finished_sessions(
    sessions: session_service_pb2_grpc.SessionServiceAsyncStub,
    items: item_service_pb2_grpc.ItemServiceAsyncStub,
) -> list[str]:
    """SESSIONS full tests taken through the real RPCs (every item answered), then finished."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(n: int) -> str:
        async with gate:
            return await take_full_test(sessions, items, n, prefix="sb")

    return list(await asyncio.gather(*(one(n) for n in range(SESSIONS))))


async def rescore_all(scoring: scoring_service_pb2_grpc.ScoringServiceAsyncStub, session_ids: list[str]) -> float:
    """Sessions rescored per second, RESCORE_CONCURRENCY calls in flight, each with its own request id."""
    service = _md(Role.SERVICE, "bench-rescore")
    gate = asyncio.Semaphore(RESCORE_CONCURRENCY)
    changed = 0

    async def one(session_id: str) -> None:
        nonlocal changed
        async with gate:
            result = await scoring.RescoreSession(
                spb.RescoreSessionRequest(session_id=session_id, request_id=uuid.uuid4().hex), metadata=service
            )
            changed += result.changed

    start = time.perf_counter()
    await asyncio.gather(*(one(sid) for sid in session_ids))
    elapsed = time.perf_counter() - start
    assert changed == 0, "nothing was recalibrated: a rescore must not write a version"
    return len(session_ids) / elapsed


async def reference_rate(channel: grpc.aio.Channel) -> float:
    """The floor: bare unary calls of an RPC that does no work (ListScoreVersions of an unknown session)."""
    scoring = scoring_service_pb2_grpc.ScoringServiceStub(channel)
    md = _md(Role.ADMIN, "bench-admin")
    gate = asyncio.Semaphore(RESCORE_CONCURRENCY)

    async def one() -> None:
        async with gate:
            try:
                await scoring.ListScoreVersions(spb.ListScoreVersionsRequest(session_id="ses-none"), metadata=md)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(REFERENCE_CALLS)))
    return REFERENCE_CALLS / (time.perf_counter() - start)


async def batch_rescore_all(
    scoring: scoring_service_pb2_grpc.ScoringServiceAsyncStub, session_ids: list[str], *, passes: int
) -> tuple[float, int]:
    """Sessions rescored per second through BatchRescoreSessions, BATCH_SIZE per call, one call at a time, each
    session with a new request id on every pass (so each pass is computed and stored, not replayed); and how
    many results said changed."""
    service = _md(Role.SERVICE, "bench-rescore")
    changed = 0
    start = time.perf_counter()
    for _ in range(passes):
        for first in range(0, len(session_ids), BATCH_SIZE):
            page = session_ids[first : first + BATCH_SIZE]
            reply = await scoring.BatchRescoreSessions(
                spb.BatchRescoreSessionsRequest(
                    requests=[
                        spb.RescoreSessionRequest(session_id=sid, request_id=uuid.uuid4().hex) for sid in page
                    ]
                ),
                metadata=service,
                timeout=120,
            )
            assert [e.session_id for e in reply.entries] == page, "one entry per request, in order"
            errors = [e.error for e in reply.entries if e.HasField("error")]
            assert not errors, f"{len(errors)} sessions failed, e.g. {errors[0]}"
            assert all(e.result.current.version > 0 for e in reply.entries)
            changed += sum(e.result.changed for e in reply.entries)
    elapsed = time.perf_counter() - start
    return passes * len(session_ids) / elapsed, changed


async def job_rate(session_address: str, item_address: str, workdir: Path, *, runs: int) -> tuple[float, int]:
    """Sessions per second of the rescore job's own code (scoring_jobs.rescore.run_rescore: ListFinishedSessions
    pages of BATCH_SIZE, one BatchRescoreSessions per page, the state file saved after each), over all finished
    sessions, `runs` times; and how many it saw in all."""
    services = Services(
        JobSettings(item_service_addr=item_address, session_service_addr=session_address, token_key=TOKEN_KEY),
        retry_seconds=30,
    )
    seen = 0
    try:
        start = time.perf_counter()
        for run in range(runs):
            summary = await run_rescore(
                services,
                filters=RescoreFilters(),
                batch_size=BATCH_SIZE,
                dry_run=False,
                state_file=StateFile(workdir / f"rescore-{run}.json", job="rescore"),
            )
            assert summary.failed == 0 and summary.changed == 0, summary.describe()
            seen += summary.seen
        return seen / (time.perf_counter() - start), seen
    finally:
        await services.close()


async def recalibrate(items: item_service_pb2_grpc.ItemServiceAsyncStub, item_ids: list[str]) -> None:
    """New IRT parameters for these items, as a calibration run writes them: a new revision of each."""
    admin = _md(Role.ADMIN, "bench-admin")
    for item_id in item_ids:
        item = await items.GetItem(
            item_service_pb2.GetItemRequest(item_id=item_id, view=item_pb2.ITEM_VIEW_FULL), metadata=admin
        )
        item.irt.a = round(item.irt.a * 0.8 + 0.3, 6)
        await items.UpdateItem(
            item_service_pb2.UpdateItemRequest(item=item, update_mask=FieldMask(paths=["irt"]), note="bench"),
            metadata=admin,
        )


async def most_seen_items(scoring: scoring_service_pb2_grpc.ScoringServiceAsyncStub, count: int) -> list[str]:
    service = _md(Role.SERVICE, "bench")
    seen: dict[str, int] = {}
    async for record in scoring.ExportResponses(spb.ExportResponsesRequest(), metadata=service):
        seen[record.item_id] = seen.get(record.item_id, 0) + 1
    return sorted(seen, key=lambda i: (-seen[i], i))[:count]


@dataclass(frozen=True)
class Figures:
    setup: float
    reference: float
    per_call: float
    batch: float
    job: float
    job_seen: int
    recalibrated: float
    changed: int


async def measure(session_address: str, item_address: str, workdir: Path) -> Figures:
    async with (
        grpc.aio.insecure_channel(session_address) as channel,
        grpc.aio.insecure_channel(item_address) as item_channel,
    ):
        items = item_service_pb2_grpc.ItemServiceStub(item_channel)
        start = time.perf_counter()
        ids = await create_finished_sessions(session_service_pb2_grpc.SessionServiceStub(channel), items)
        setup = time.perf_counter() - start
        scoring = scoring_service_pb2_grpc.ScoringServiceStub(channel)
        reference = await reference_rate(channel)
        per_call = await rescore_all(scoring, ids)
        batch, unchanged = await batch_rescore_all(scoring, ids, passes=BATCH_PASSES)
        assert unchanged == 0, "nothing was recalibrated: a rescore must not write a version"
        job, job_seen = await job_rate(session_address, item_address, workdir, runs=JOB_RUNS)
        recalibrated_items = await most_seen_items(scoring, RECALIBRATED_ITEMS)
        elapsed, changed = 0.0, 0
        for _ in range(RECALIBRATIONS):
            await recalibrate(items, recalibrated_items)
            rate, changed_now = await batch_rescore_all(scoring, ids, passes=1)
            assert changed_now > 0, "the recalibrated items were seen: some sessions must get a new version"
            elapsed += len(ids) / rate
            changed += changed_now
        recalibrated = RECALIBRATIONS * len(ids) / elapsed
        return Figures(setup, reference, per_call, batch, job, job_seen, recalibrated, changed)


def main() -> None:
    eap_us, dot_us = eap_microseconds()
    out = sys.stdout.write
    out(f"EAP, {SECTION_ITEMS}-item section (45 3PL + 5 GPCM, 61-point grid)\n")
    out(f"  EAP                      {eap_us:9.1f} us   (target <= 1000 us)\n")
    out(f"  NumPy dot (50 x 61)      {dot_us:9.1f} us\n")
    out(f"  EAP / dot                {eap_us / dot_us:9.1f}\n")
    with tempfile.TemporaryDirectory(prefix="scoring-bench-") as tmp:
        items, sessions = start_services(Path(tmp))
        try:
            figures = asyncio.run(measure(sessions.address, items.address, Path(tmp)))
        finally:
            sessions.terminate()
            items.terminate()
    out(f"Rescoring over gRPC: {SESSIONS} finished full tests\n")
    out(f"  setup (real RPCs)        {figures.setup:9.1f} s\n")
    out(f"  bare unary calls/s       {figures.reference:9.1f}   (an RPC that does no work, same server)\n")
    out(
        f"  RescoreSession           {figures.per_call:9.1f} sessions/s   "
        f"(one session per call, {RESCORE_CONCURRENCY} calls in flight)\n"
    )
    out(
        f"  BatchRescoreSessions     {figures.batch:9.1f} sessions/s   (target >= 500; {BATCH_SIZE} per call, "
        f"one call at a time, {BATCH_PASSES} passes, nothing changed)\n"
    )
    out(
        f"  rescore job              {figures.job:9.1f} sessions/s   (scoring_jobs' run_rescore, pages of "
        f"{BATCH_SIZE}, state saved per page; {JOB_RUNS} runs, {figures.job_seen} sessions, nothing changed)\n"
    )
    out(
        f"  after a recalibration    {figures.recalibrated:9.1f} sessions/s   ({RECALIBRATIONS} times "
        f"{RECALIBRATED_ITEMS} items, a pass each; {figures.changed}/{RECALIBRATIONS * SESSIONS} new versions)\n"
    )
    out(f"  batch / per call         {figures.batch / figures.per_call:9.2f}\n")
    out(f"  batch / bare call        {figures.batch / figures.reference:9.2f}\n")


if __name__ == "__main__":
    main()
