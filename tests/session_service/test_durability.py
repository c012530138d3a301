"""Answers survive SIGKILL, retries never write twice, late answers and closed modules are refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.session_service.conftest import session_process
from tests.support.exam import (
    Stub,
    admin,
    answer,
    as_user,
    expect_code,
    expect_reason,
    full_items,
    new_user,
    request_id,
)

FP = grpc.StatusCode.FAILED_PRECONDITION


def reading_session(stub: Stub, md: tuple[tuple[str, str], ...]) -> pb.Session:
    return stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING), metadata=md
    )


def submit(
    stub: Stub,
    md: tuple[tuple[str, str], ...],
    session_id: str,
    item: item_pb2.Item,
    rid: str,
    *,
    correct: bool = True,
) -> pb.SubmitResponseResponse:
    return stub.SubmitResponse(
        pb.SubmitResponseRequest(
            session_id=session_id, item_id=item.item_id, answer=answer(item, correct=correct), request_id=rid
        ),
        metadata=md,
    )


def stored_responses(stub: Stub, student_id: str) -> list[dict[str, object]]:
    document = json.loads(
        stub.ExportStudentData(pb.ExportStudentDataRequest(student_id=student_id), metadata=admin()).json_document
    )
    return [r for s in document["sessions"] for r in s["responses"]]


@pytest.fixture
def own_session(item_service_proc: ServiceProcess, tmp_path: Path) -> Iterator[ServiceProcess]:
    proc = session_process(tmp_path, item_address=item_service_proc.address).start()
    yield proc
    proc.kill()


# session_service's defaults (SESSION_OUTAGE_GRACE_SECONDS, SESSION_HEARTBEAT_SECONDS).
OUTAGE_GRACE_MS = 5_000
HEARTBEAT_MS = 1_000


@pytest.mark.parametrize("stop", ["kill", "terminate"], ids=["SIGKILL", "SIGTERM"])
def test_a_stop_mid_module_keeps_every_acknowledged_answer_exactly_once(
    own_session: ServiceProcess, item_stub: item_service_pb2_grpc.ItemServiceStub, stop: str
) -> None:
    with grpc.insecure_channel(own_session.address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        student = new_user(stub)
        md = as_user(student)
        session = reading_session(stub, md)
        module = session.current_module
        items = full_items(item_stub, module.items)
        acknowledged: list[tuple[str, str, int]] = []
        done = threading.Event()

        def keep_answering() -> None:
            # Changes answers over and over (new revisions) until the service dies under it.
            for turn in range(100_000):
                if done.is_set():
                    return
                item = items[turn % len(items)]
                rid = request_id()
                try:
                    reply = submit(stub, md, session.session_id, item, rid, correct=turn % 2 == 0)
                except grpc.RpcError:
                    return
                acknowledged.append((item.item_id, rid, reply.response.revision))

        writer = threading.Thread(target=keep_answering)
        writer.start()
        while len(acknowledged) < 40:
            time.sleep(0.01)
        stopped_ms = int(time.time() * 1000)
        getattr(own_session, stop)()
        done.set()
        writer.join()

    own_session.start()
    up_ms = int(time.time() * 1000)
    with grpc.insecure_channel(own_session.address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        before_ms = int(time.time() * 1000)
        resumed = stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
        after_ms = int(time.time() * 1000)
        current = resumed.current_module
        assert current.module_id == module.module_id and current.status == pb.MODULE_STATUS_OPEN
        # The module was open during the outage: it got the downtime back (from the last heartbeat, at most a
        # beat before the stop, until the start), plus the grace for clients to reach the service again.
        moved_ms = current.deadline.ToMilliseconds() - module.deadline.ToMilliseconds()
        assert OUTAGE_GRACE_MS < moved_ms <= up_ms - stopped_ms + HEARTBEAT_MS + OUTAGE_GRACE_MS
        deadline_ms = current.deadline.ToMilliseconds()
        assert (deadline_ms - after_ms) // 1000 <= current.remaining_seconds <= (deadline_ms - before_ms) // 1000

        stored = stored_responses(stub, student.user_id)
        stored_ids = [r["request_id"] for r in stored]
        assert len(stored_ids) == len(set(stored_ids)), "an answer was stored twice"
        acked_ids = {rid for _, rid, _ in acknowledged}
        assert acked_ids <= set(stored_ids), "an acknowledged answer was lost"
        # At most the one request that was in flight when the process died may be stored unacknowledged.
        assert len(set(stored_ids) - acked_ids) <= 1
        latest: dict[str, int] = {}
        for item_id, _rid, revision in acknowledged:
            latest[item_id] = max(latest.get(item_id, 0), revision)
        shown = {r.item_id: r.revision for r in current.responses}
        assert all(shown[item_id] >= revision for item_id, revision in latest.items())

        # A retry of an acknowledged request after the restart is a replay, not a new revision.
        item_id, rid, revision = acknowledged[0]
        item = next(i for i in items if i.item_id == item_id)
        replay = submit(stub, md, session.session_id, item, rid)
        assert replay.replayed and replay.response.revision == revision
        assert len(stored_responses(stub, student.user_id)) == len(stored)


def test_retries_with_the_same_request_id_write_once(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    student = new_user(session_stub)
    md = as_user(student)
    session = reading_session(session_stub, md)
    first, second = full_items(item_stub, session.current_module.items)[:2]
    rid = request_id()
    original = submit(session_stub, md, session.session_id, first, rid)
    retry = submit(session_stub, md, session.session_id, first, rid, correct=False)
    assert not original.replayed and retry.replayed and retry.response == original.response

    # Concurrent duplicates: exactly one of them writes.
    rid2 = request_id()
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda _: submit(session_stub, md, session.session_id, second, rid2), range(16)))
    assert sum(not r.replayed for r in replies) == 1
    assert {r.response.revision for r in replies} == {1}

    changed = submit(session_stub, md, session.session_id, first, request_id(), correct=False)
    assert changed.response.revision == 2 and not changed.replayed
    stored = stored_responses(session_stub, student.user_id)
    assert [(r["item_id"], r["revision"]) for r in stored] == [
        (first.item_id, 1),
        (second.item_id, 1),
        (first.item_id, 2),
    ]
    state = session_stub.GetCurrentModule(pb.GetCurrentModuleRequest(session_id=session.session_id), metadata=md)
    latest = {r.item_id: r for r in state.responses}
    assert latest[first.item_id].revision == 2 and latest[first.item_id].answer == answer(first, correct=False)

    expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: submit(session_stub, md, session.session_id, first, ""),
        "request_id is required",
    )


def test_advance_retry_does_not_advance_twice_and_closed_modules_refuse_answers(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    student = new_user(session_stub)
    md = as_user(student)
    session = reading_session(session_stub, md)
    router_item = full_items(item_stub, session.current_module.items)[0]
    rid = request_id()
    advanced = session_stub.AdvanceModule(
        pb.AdvanceModuleRequest(session_id=session.session_id, request_id=rid), metadata=md
    )
    again = session_stub.AdvanceModule(
        pb.AdvanceModuleRequest(session_id=session.session_id, request_id=rid), metadata=md
    )
    assert advanced.current_module.sequence == again.current_module.sequence == 2
    assert [m.status for m in again.modules] == [pb.MODULE_STATUS_CLOSED, pb.MODULE_STATUS_OPEN]
    # Nothing answered in the router: routed lower, and the next module repeats none of its items.
    assert advanced.current_module.stage == pb.MODULE_STAGE_LOWER
    assert not {i.item_id for i in advanced.current_module.items} & {
        i.item_id for i in session.current_module.items
    }
    expect_reason(
        FP,
        lambda: submit(session_stub, md, session.session_id, router_item, request_id()),
        "NOT_IN_MODULE",
        "not in the current module",
    )

    finished = session_stub.AdvanceModule(pb.AdvanceModuleRequest(session_id=session.session_id), metadata=md)
    assert not finished.HasField("current_module") and finished.state == pb.SESSION_STATE_IN_PROGRESS
    expect_reason(
        FP,
        lambda: session_stub.AdvanceModule(pb.AdvanceModuleRequest(session_id=session.session_id), metadata=md),
        "NO_CURRENT_MODULE",
        "FinishSession",
    )
    done = session_stub.FinishSession(pb.FinishSessionRequest(session_id=session.session_id), metadata=md)
    assert done.state == pb.SESSION_STATE_FINISHED
    finished_refusal = expect_reason(
        FP,
        lambda: submit(session_stub, md, session.session_id, router_item, request_id()),
        "SESSION_FINISHED",
        "finished",
    )
    assert finished_refusal.retry_after is None


@pytest.fixture(scope="module")
def fast_clock_session(
    item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stub]:
    # Reading router: 900 s scaled to 1.8 s; the sweep runs five times a second.
    proc = session_process(
        tmp_path_factory.mktemp("fast-clock"),
        item_address=item_service_proc.address,
        env={"SESSION_TIME_SCALE": "0.002", "SESSION_SWEEP_SECONDS": "0.2"},
    ).start()
    with grpc.insecure_channel(proc.address) as channel:
        yield session_service_pb2_grpc.SessionServiceStub(channel)
    proc.terminate()


def _wait_past(module: pb.ModuleState) -> None:
    while time.time() * 1000 <= module.deadline.ToMilliseconds() + 50:
        time.sleep(0.05)


def test_late_answers_are_refused_and_saved_ones_kept(
    fast_clock_session: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    stub = fast_clock_session
    student = new_user(stub)
    md = as_user(student)
    session = reading_session(stub, md)
    first, second = full_items(item_stub, session.current_module.items)[:2]
    saved = submit(stub, md, session.session_id, first, request_id())
    _wait_past(session.current_module)
    late = expect_reason(
        FP, lambda: submit(stub, md, session.session_id, second, request_id()), "MODULE_TIME_UP", "time is up"
    )
    # Time does not come back: nothing to retry.
    assert late.retry_after is None
    state = stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md).current_module
    assert state.status == pb.MODULE_STATUS_EXPIRED and state.remaining_seconds == 0
    assert [r.request_id for r in state.responses] == [saved.response.request_id]
    # An expired module still lets the student move on.
    moved = stub.AdvanceModule(pb.AdvanceModuleRequest(session_id=session.session_id), metadata=md)
    assert moved.current_module.sequence == 2 and moved.modules[0].status == pb.MODULE_STATUS_EXPIRED


def test_the_sweep_closes_expired_modules_nobody_touches(fast_clock_session: Stub) -> None:
    stub = fast_clock_session
    student = new_user(stub)
    session = reading_session(stub, as_user(student))
    _wait_past(session.current_module)
    give_up = time.monotonic() + 30
    while True:
        # ListSessions never closes anything itself, so only the sweep can have closed the module.
        listed = stub.ListSessions(pb.ListSessionsRequest(student_id=student.user_id), metadata=admin()).sessions
        if listed[0].modules[0].status == pb.MODULE_STATUS_EXPIRED:
            break
        assert time.monotonic() < give_up, "the sweep never closed the expired module"
        time.sleep(0.1)
