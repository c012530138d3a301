"""Failed sign-ins are throttled per account and per client address (RESOURCE_EXHAUSTED, HTTP 429).

Each test has a session_service of its own: throttling state from one test must not decide another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.security.conftest import Stack, running_stack
from tests.security.test_login import PASSWORD, create_student, sign_in

# "After a few attempts": the limits may be lower, never higher.
ACCOUNT_ATTEMPTS_AT_MOST = 10
ADDRESS_ATTEMPTS_AT_MOST = 50


@pytest.fixture
def fresh(item_service_proc: ServiceProcess, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(item_service_proc, tmp_path) as running:
        yield running


def direct_code(stack: Stack, username: str, password: str) -> grpc.StatusCode:
    stub = session_service_pb2_grpc.SessionServiceStub(stack.channels["session_service"])
    try:
        stub.Authenticate(pb.AuthenticateRequest(username=username, password=password))
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


@pytest.mark.parametrize("account", ["existing", "unknown"])
def test_failed_sign_ins_for_one_account_are_throttled(fresh: Stack, account: str) -> None:
    """Unknown usernames are throttled alike, so that throttling does not tell which accounts exist."""
    username = create_student(fresh)["username"] if account == "existing" else f"nobody-{uuid.uuid4().hex[:8]}"
    codes = [direct_code(fresh, username, f"wrong-{n}-password") for n in range(ACCOUNT_ATTEMPTS_AT_MOST)]
    assert codes[0] == grpc.StatusCode.UNAUTHENTICATED
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes, codes
    status, body = sign_in(fresh, username, PASSWORD)
    assert status == 429 and body["code"] == 8, body
    if account == "existing":
        # Even the right password waits: otherwise guessing would simply go on.
        assert direct_code(fresh, username, PASSWORD) == grpc.StatusCode.RESOURCE_EXHAUSTED
    other = create_student(fresh)
    assert sign_in(fresh, other["username"], PASSWORD)[0] == 200, "other accounts are not locked out"


def test_failed_sign_ins_from_one_address_are_throttled(fresh: Stack) -> None:
    """Through the gateway: the address counted is the client's, so one client cannot lock out another."""
    student = create_student(fresh)
    statuses = [
        sign_in(fresh, f"nobody-{n}-{uuid.uuid4().hex[:6]}", "a-wrong-password")[0]
        for n in range(ADDRESS_ATTEMPTS_AT_MOST)
    ]
    assert statuses[0] == 401
    assert 429 in statuses, statuses
    assert sign_in(fresh, student["username"], PASSWORD)[0] == 429
    status, body = fresh.gateway.request(
        "POST", "/api/auth/token", body={"username": student["username"], "password": PASSWORD}, source="127.0.0.2"
    )
    assert status == 200, body
