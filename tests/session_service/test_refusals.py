"""What a program reads in a refusal: ErrorInfo reasons and RetryInfo delays, and ids with control characters
refused before anything is stored."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from session_service.domain.limits import DAY_MS
from session_service.domain.throttle import PER_ACCOUNT_AND_ADDRESS as PER_ACCOUNT
from tests.session_service.conftest import session_process
from tests.session_service.test_durability import submit
from tests.support.exam import (
    PASSWORD,
    Stub,
    admin,
    as_user,
    expect_reason,
    full_items,
    new_user,
    refusal,
    request_id,
)

DAILY_LIMIT = 2
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def limited(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stub]:
    """A session_service of its own: a low daily limit, and sign-in failures no other test adds to."""
    proc = session_process(
        tmp_path_factory.mktemp("limited"),
        item_address=item_service_proc.address,
        env={"SESSION_DAILY_SESSION_LIMIT": str(DAILY_LIMIT)},
    ).start()
    with grpc.insecure_channel(proc.address) as channel:
        yield session_service_pb2_grpc.SessionServiceStub(channel)
    proc.terminate()


def reading(stub: Stub, md: tuple[tuple[str, str], ...], rid: str = "") -> pb.Session:
    return stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING, request_id=rid),
        metadata=md,
    )


def exported(stub: Stub, student_id: str) -> dict[str, list[dict[str, object]]]:
    document = json.loads(
        stub.ExportStudentData(pb.ExportStudentDataRequest(student_id=student_id), metadata=admin()).json_document
    )
    return {
        "sessions": document["sessions"],
        "responses": [r for s in document["sessions"] for r in s["responses"]],
    }


def test_the_daily_limit_says_when_it_resets(limited: Stub) -> None:
    md = as_user(new_user(limited))
    for _ in range(DAILY_LIMIT):
        reading(limited, md)
    refused = expect_reason(EXHAUSTED, lambda: reading(limited, md), "DAILY_SESSION_LIMIT", "resets at")
    # Counted from the server's clock, read a moment before this one.
    until_midnight = (DAY_MS - int(time.time() * 1000) % DAY_MS) / 1000
    assert refused.retry_after is not None and -1 < refused.retry_after - until_midnight < 60, refused
    assert refused.metadata["limit"] == str(DAILY_LIMIT) and refused.metadata["resets_at"].endswith("T00:00:00Z")


def test_a_start_retried_with_its_request_id_gets_its_session_even_at_the_daily_limit(limited: Stub) -> None:
    md = as_user(new_user(limited))
    rid = request_id()
    first = reading(limited, md, rid)
    for _ in range(DAILY_LIMIT - 1):
        reading(limited, md)
    expect_reason(EXHAUSTED, lambda: reading(limited, md), "DAILY_SESSION_LIMIT", "resets at")
    # The client's retry of its first start (its reply was lost): that session as it stands, not a refusal.
    again = reading(limited, md, rid)
    assert again.session_id == first.session_id and again.state == first.state
    assert [m.module_id for m in again.modules] == [m.module_id for m in first.modules]
    assert again.current_module.module_id == first.current_module.module_id
    assert [i.item_id for i in again.current_module.items] == [i.item_id for i in first.current_module.items]


def test_a_throttled_sign_in_says_how_long_to_wait(limited: Stub) -> None:
    username = f"nobody-{uuid.uuid4().hex[:8]}"
    for _ in range(PER_ACCOUNT.failures):
        with pytest.raises(grpc.RpcError) as wrong:
            limited.Authenticate(pb.AuthenticateRequest(username=username, password="wrong password"))
        assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED and refusal(wrong.value).reason is None
    refused = expect_reason(
        EXHAUSTED,
        lambda: limited.Authenticate(pb.AuthenticateRequest(username=username, password=PASSWORD)),
        "SIGN_IN_THROTTLED",
    )
    assert refused.retry_after is not None and 0 < refused.retry_after <= PER_ACCOUNT.window_seconds, refused


def test_no_current_module_and_a_closed_module_have_their_reasons(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    md = as_user(new_user(session_stub))
    session = reading(session_stub, md)
    router_item = full_items(item_stub, session.current_module.items)[0]
    session_stub.AdvanceModule(pb.AdvanceModuleRequest(session_id=session.session_id), metadata=md)
    session_stub.AdvanceModule(pb.AdvanceModuleRequest(session_id=session.session_id), metadata=md)
    expect_reason(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: session_stub.GetCurrentModule(
            pb.GetCurrentModuleRequest(session_id=session.session_id), metadata=md
        ),
        "NO_CURRENT_MODULE",
    )
    expect_reason(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: submit(session_stub, md, session.session_id, router_item, request_id()),
        "NO_CURRENT_MODULE",
    )


@pytest.mark.parametrize("bad", ["\x00", "\x1f", "\x7f", "\u009b"])
def test_a_control_character_in_an_id_is_refused_and_nothing_is_stored(
    session_stub: Stub, item_stub: item_service_pb2_grpc.ItemServiceStub, bad: str
) -> None:
    student = new_user(session_stub)
    md = as_user(student)
    # A session started with such a request id would keep it, and a retry would have to send it back.
    with pytest.raises(grpc.RpcError) as started:
        reading(session_stub, md, f"start{bad}1")
    refused = refusal(started.value)
    assert (refused.code, refused.fields) == (INVALID, ("request_id",)), refused
    assert exported(session_stub, student.user_id)["sessions"] == []

    session = reading(session_stub, md)
    item = full_items(item_stub, session.current_module.items)[0]

    for session_id, rid, field in [
        (session.session_id, f"{request_id()}{bad}", "request_id"),
        (f"{session.session_id}{bad}", request_id(), "session_id"),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            submit(session_stub, md, session_id, item, rid)
        found = refusal(caught.value)
        assert (found.code, found.fields) == (INVALID, (field,)), found
        assert "control character" in (caught.value.details() or "")
    assert exported(session_stub, student.user_id)["responses"] == []
    # The same answer with printable ids is taken.
    assert submit(session_stub, md, session.session_id, item, request_id()).response.item_id == item.item_id
