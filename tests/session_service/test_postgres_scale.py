"""Two session_service processes on one PostgreSQL: students answer through both; nothing lost or duplicated."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

import grpc
import psycopg
import pytest
from sqlalchemy import event
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.postgres import DB_NAME, DB_USER, PostgresCluster
from launcher.procs import ServiceProcess
from session_service.domain.states import STATUS_OPEN
from session_service.storage import sessions
from session_service.storage.engine import Database
from tests.session_service.conftest import session_process
from tests.support.exam import admin, answer, as_user, full_items, new_user, request_id

STUDENTS = 40
RACES = 12
Stub = session_service_pb2_grpc.SessionServiceStub
Metadata = tuple[tuple[str, str], ...]
# The generated stub typed for a grpc.aio channel (a name that exists only in the .pyi, hence the string).
AioStub: TypeAlias = "session_service_pb2_grpc.SessionServiceAsyncStub"
AioStubs: TypeAlias = tuple[AioStub, AioStub]


@pytest.fixture(scope="module")
def processes(
    cluster: PostgresCluster, item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Two session services on the same database; started one after the other (the first one migrates)."""
    first = session_process(
        tmp_path_factory.mktemp("session-a"), item_address=item_service_proc.address, database_url=cluster.url
    ).start()
    try:
        second = session_process(
            tmp_path_factory.mktemp("session-b"), item_address=item_service_proc.address, database_url=cluster.url
        ).start()
        try:
            yield first, second
        finally:
            second.terminate()
    finally:
        first.terminate()


@dataclass
class Taker:
    """One student, the session they take, and every answer either process acknowledged."""

    student: pb.User
    session_id: str
    acknowledged: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def md(self) -> Metadata:
        return as_user(self.student)


def open_takers(stub: Stub, other: Stub, count: int) -> list[Taker]:
    """Students created on one process, each opening a Reading section on either process in turn."""
    takers = []
    for n in range(count):
        student = new_user(stub)
        session = (stub, other)[n % 2].CreateSession(
            pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING),
            metadata=as_user(student),
        )
        takers.append(Taker(student, session.session_id))
    return takers


async def answer_module(
    taker: Taker, items: list[item_pb2.Item], stubs: AioStubs, offset: int, correct: bool
) -> None:
    """Each answer on one process, its retry on the other (a replay); the first item answered twice."""
    for k, item in enumerate([*items, items[0]]):
        here, there = stubs[(offset + k) % 2], stubs[(offset + k + 1) % 2]
        submit = pb.SubmitResponseRequest(
            session_id=taker.session_id,
            item_id=item.item_id,
            answer=answer(item, correct=correct if k < len(items) else not correct),
            request_id=request_id(),
        )
        first = await here.SubmitResponse(submit, metadata=taker.md)
        assert not first.replayed
        again = await there.SubmitResponse(submit, metadata=taker.md)
        assert again.replayed
        assert again.response == first.response
        taker.acknowledged[submit.request_id] = (item.item_id, first.response.revision)


async def check_resume(taker: Taker, stubs: AioStubs) -> pb.Session:
    """Both processes show the same module, every latest saved answer and the same deadline."""
    views = [
        await stub.GetSession(pb.GetSessionRequest(session_id=taker.session_id), metadata=taker.md)
        for stub in stubs
    ]
    latest: dict[str, int] = {}
    for item_id, revision in taker.acknowledged.values():
        latest[item_id] = max(latest.get(item_id, 0), revision)
    for view in views:
        module = view.current_module
        in_module = {i.item_id for i in module.items}
        assert {r.item_id: r.revision for r in module.responses} == {
            i: r for i, r in latest.items() if i in in_module
        }
        assert (module.module_id, module.deadline) == (
            views[0].current_module.module_id,
            views[0].current_module.deadline,
        )
    return views[0]


async def take_section(
    taker: Taker, offset: int, stubs: AioStubs, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    for stage in range(2):
        view = await check_resume(taker, stubs)
        items = await asyncio.to_thread(full_items, item_stub, view.current_module.items)
        await answer_module(taker, items, stubs, offset + stage, correct=offset % 2 == 0)
        await check_resume(taker, stubs)
        advance = pb.AdvanceModuleRequest(session_id=taker.session_id, request_id=request_id())
        moved = await stubs[(offset + stage) % 2].AdvanceModule(advance, metadata=taker.md)
        # The retry reaches the other process: it reports the same session, not a second advance.
        retried = await stubs[(offset + stage + 1) % 2].AdvanceModule(advance, metadata=taker.md)
        assert len(moved.modules) == len(retried.modules) == 2
        assert retried.current_module.module_id == moved.current_module.module_id


def stored_request_ids(cluster: PostgresCluster) -> Counter[str]:
    with psycopg.connect(host=str(cluster.socket_dir), dbname=DB_NAME, user=DB_USER) as conn:
        rows = conn.execute("SELECT request_id FROM responses").fetchall()
    return Counter(r for (r,) in rows)


async def test_students_across_two_processes_lose_and_duplicate_nothing(
    cluster: PostgresCluster,
    processes: tuple[ServiceProcess, ServiceProcess],
    item_stub: item_service_pb2_grpc.ItemServiceStub,
) -> None:
    with grpc.insecure_channel(processes[0].address) as a, grpc.insecure_channel(processes[1].address) as b:
        takers = open_takers(Stub(a), Stub(b), STUDENTS)
    async with (
        grpc.aio.insecure_channel(processes[0].address) as a_aio,
        grpc.aio.insecure_channel(processes[1].address) as b_aio,
    ):
        stubs = (Stub(a_aio), Stub(b_aio))
        await asyncio.gather(*(take_section(t, n, stubs, item_stub) for n, t in enumerate(takers)))
        exports = [
            json.loads(
                (
                    await stubs[n % 2].ExportStudentData(
                        pb.ExportStudentDataRequest(student_id=t.student.user_id), metadata=admin()
                    )
                ).json_document
            )
            for n, t in enumerate(takers)
        ]
    for taker, document in zip(takers, exports, strict=True):
        (session,) = document["sessions"]
        exported = Counter(r["request_id"] for r in session["responses"])
        assert exported == Counter(set(taker.acknowledged)), taker.session_id
        assert {r["request_id"]: (r["item_id"], r["revision"]) for r in session["responses"]} == taker.acknowledged
        assert [m["sequence"] for m in session["modules"]] == [1, 2]
    stored = stored_request_ids(cluster)
    acknowledged = {rid for t in takers for rid in t.acknowledged}
    assert set(stored) >= acknowledged
    assert [rid for rid, count in stored.items() if count != 1] == []
    print(f"two processes: {len(takers)} students, {len(acknowledged)} answers acknowledged, stored once each")


async def test_same_advance_on_both_processes_at_once_advances_once(
    processes: tuple[ServiceProcess, ServiceProcess],
) -> None:
    with grpc.insecure_channel(processes[0].address) as a, grpc.insecure_channel(processes[1].address) as b:
        takers = open_takers(Stub(a), Stub(b), RACES)
    async with (
        grpc.aio.insecure_channel(processes[0].address) as a_aio,
        grpc.aio.insecure_channel(processes[1].address) as b_aio,
    ):
        stubs = (Stub(a_aio), Stub(b_aio))

        async def race(taker: Taker) -> None:
            advance = pb.AdvanceModuleRequest(session_id=taker.session_id, request_id=request_id())
            replies = await asyncio.gather(*(stub.AdvanceModule(advance, metadata=taker.md) for stub in stubs))
            assert [len(r.modules) for r in replies] == [2, 2]
            assert replies[0].current_module.module_id == replies[1].current_module.module_id
            view = await stubs[0].GetSession(pb.GetSessionRequest(session_id=taker.session_id), metadata=taker.md)
            assert [m.sequence for m in view.modules] == [1, 2]

        await asyncio.gather(*(race(t) for t in takers))


async def test_one_session_answered_on_both_processes_at_once(
    cluster: PostgresCluster,
    processes: tuple[ServiceProcess, ServiceProcess],
    item_stub: item_service_pb2_grpc.ItemServiceStub,
) -> None:
    """Two tabs (or a client's early retry): the same sessions answered on both processes at the same moment.

    Each process gets the students in the opposite order, so their group commits lock sessions in opposite orders.
    """
    with grpc.insecure_channel(processes[0].address) as a, grpc.insecure_channel(processes[1].address) as b:
        takers = open_takers(Stub(a), Stub(b), STUDENTS)
        items = {
            t.session_id: full_items(
                item_stub,
                Stub(a)
                .GetSession(pb.GetSessionRequest(session_id=t.session_id), metadata=t.md)
                .current_module.items,
            )
            for t in takers
        }
    async with (
        grpc.aio.insecure_channel(processes[0].address) as a_aio,
        grpc.aio.insecure_channel(processes[1].address) as b_aio,
    ):
        stubs = (Stub(a_aio), Stub(b_aio))

        async def submit(stub: AioStub, taker: Taker, item: item_pb2.Item) -> None:
            request = pb.SubmitResponseRequest(
                session_id=taker.session_id,
                item_id=item.item_id,
                answer=answer(item, correct=True),
                request_id=request_id(),
            )
            reply = await stub.SubmitResponse(request, metadata=taker.md)
            taker.acknowledged[request.request_id] = (item.item_id, reply.response.revision)

        for k in range(8):
            await asyncio.gather(
                *(submit(stubs[0], t, items[t.session_id][k]) for t in takers),
                *(submit(stubs[1], t, items[t.session_id][k]) for t in reversed(takers)),
            )
    stored = stored_request_ids(cluster)
    assert [rid for t in takers for rid in t.acknowledged if stored[rid] != 1] == []
    for taker in takers:
        revisions = sorted(revision for _, revision in taker.acknowledged.values())
        assert revisions == sorted([1, 2] * 8), taker.session_id


async def test_same_create_session_on_both_processes_at_once_creates_one(
    processes: tuple[ServiceProcess, ServiceProcess],
) -> None:
    with grpc.insecure_channel(processes[0].address) as channel:
        students = [new_user(Stub(channel)) for _ in range(RACES)]
    async with (
        grpc.aio.insecure_channel(processes[0].address) as a_aio,
        grpc.aio.insecure_channel(processes[1].address) as b_aio,
    ):
        stubs = (Stub(a_aio), Stub(b_aio))

        async def race(student: pb.User) -> None:
            create = pb.CreateSessionRequest(
                scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING, request_id=request_id()
            )
            replies = await asyncio.gather(
                *(stub.CreateSession(create, metadata=as_user(student)) for stub in stubs)
            )
            assert replies[0].session_id == replies[1].session_id
            assert replies[0].current_module.module_id == replies[1].current_module.module_id
            listed = await stubs[1].ListSessions(
                pb.ListSessionsRequest(student_id=student.user_id), metadata=as_user(student)
            )
            assert [s.session_id for s in listed.sessions] == [replies[0].session_id]

        await asyncio.gather(*(race(s) for s in students))


def test_a_read_is_one_snapshot(
    cluster: PostgresCluster, processes: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """Another process's commit between a read's statements (the sessions, then their modules) stays unseen.

    Under PostgreSQL's default READ COMMITTED it was seen: AdvanceModule raced on two processes once answered with
    the new module list and the old current module. (GetSession is one statement now; listing sessions is two.)
    """
    with grpc.insecure_channel(processes[0].address) as channel:
        (taker,) = open_takers(Stub(channel), Stub(channel), 1)
    close = "UPDATE modules SET status = 'MODULE_STATUS_CLOSED' WHERE session_id = %s"
    db = Database(cluster.url)
    committed: list[str] = []

    def commit_in_between(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM modules" in statement and not committed:
            with psycopg.connect(host=str(cluster.socket_dir), dbname=DB_NAME, user=DB_USER) as other:
                other.execute(close, (taker.session_id,))
            committed.append(statement)

    event.listen(db.write_engine, "before_cursor_execute", commit_in_between)
    try:
        records = sessions.list_sessions(db, student_ids=[taker.student.user_id], state=None, after=None, limit=10)
    finally:
        db.dispose()
    assert committed, "the read never queried the modules"
    assert [r.session_id for r in records] == [taker.session_id]
    assert [m.status for m in records[0].modules] == [STATUS_OPEN]
