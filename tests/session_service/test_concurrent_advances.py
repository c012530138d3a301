"""Advances wait their turn (SESSION_CONCURRENT_ADVANCES): a room advancing at once all gets through, each
advance applied once, with a single advance at a time."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.session_service.conftest import session_process
from tests.support.exam import Stub, as_user, new_user, request_id

ROOM = 12


@pytest.fixture(scope="module")
def one_at_a_time(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stub]:
    proc = session_process(
        tmp_path_factory.mktemp("advances"),
        item_address=item_service_proc.address,
        env={"SESSION_CONCURRENT_ADVANCES": "1"},
    ).start()
    with grpc.insecure_channel(proc.address) as channel:
        yield session_service_pb2_grpc.SessionServiceStub(channel)
    proc.terminate()


def test_a_room_advances_together_one_at_a_time(one_at_a_time: Stub) -> None:
    students = [new_user(one_at_a_time) for _ in range(ROOM)]

    def start(student: pb.User) -> pb.Session:
        return one_at_a_time.CreateSession(
            pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING),
            metadata=as_user(student),
        )

    with ThreadPoolExecutor(ROOM) as pool:
        sessions = list(pool.map(start, students))
    assert all(s.current_module.stage == pb.MODULE_STAGE_ROUTER for s in sessions)

    # Every student asks twice at once with one request id (a client's retry racing its first try).
    asks = [(student, session, request_id()) for student, session in zip(students, sessions, strict=True)] * 2

    def advance(ask: tuple[pb.User, pb.Session, str]) -> pb.Session:
        student, session, rid = ask
        return one_at_a_time.AdvanceModule(
            pb.AdvanceModuleRequest(session_id=session.session_id, request_id=rid), metadata=as_user(student)
        )

    with ThreadPoolExecutor(2 * ROOM) as pool:
        replies = list(pool.map(advance, asks))
    for first, second in zip(replies[:ROOM], replies[ROOM:], strict=True):
        assert first.current_module.module_id == second.current_module.module_id
        assert first.current_module.sequence == 2
        assert first.current_module.stage in (pb.MODULE_STAGE_LOWER, pb.MODULE_STAGE_UPPER)
        assert [m.sequence for m in first.modules] == [1, 2]


def test_zero_concurrent_advances_is_refused_at_start(
    item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    proc = session_process(
        tmp_path_factory.mktemp("no-advances"),
        item_address=item_service_proc.address,
        env={"SESSION_CONCURRENT_ADVANCES": "0"},
    )
    with pytest.raises(Exception, match="SESSION_CONCURRENT_ADVANCES"):
        proc.start(timeout=20)
    proc.kill()
