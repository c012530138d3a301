"""Failed sign-ins are throttled per account and per client address (RESOURCE_EXHAUSTED, HTTP 429).

Each test has a session_service of its own: throttling state from one test must not decide another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
# Far above a class's typos: one address (a school) is held back only past this many failures.
ADDRESS_ATTEMPTS_AT_MOST = 120


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


def test_one_address_is_slowed_not_locked_and_spares_accounts_known_there(fresh: Stack) -> None:
    """Through the gateway: the address counted is the client's, so one client cannot lock out another; a school
    behind one address is slowed past a ceiling far above a class's typos, and its students who signed in there
    before still get in."""
    known = create_student(fresh)
    assert sign_in(fresh, known["username"], PASSWORD)[0] == 200
    newcomer = create_student(fresh)
    statuses = [
        sign_in(fresh, f"nobody-{n}-{uuid.uuid4().hex[:6]}", "a-wrong-password")[0]
        for n in range(ADDRESS_ATTEMPTS_AT_MOST)
    ]
    assert statuses[0] == 401
    assert 429 in statuses, statuses
    status, headers, body = fresh.gateway.exchange(
        "POST", "/api/auth/token", body={"username": newcomer["username"], "password": PASSWORD}
    )
    assert status == 429 and body["details"][0]["reason"] == "SIGN_IN_THROTTLED", body
    # The hold is short (backoff, not a 15-minute lockout) and says so.
    assert 1 <= int(headers["Retry-After"]) <= 60, headers
    assert sign_in(fresh, known["username"], PASSWORD)[0] == 200
    status, body = fresh.gateway.request(
        "POST",
        "/api/auth/token",
        body={"username": newcomer["username"], "password": PASSWORD},
        source="127.0.0.2",
    )
    assert status == 200, body


def test_a_trusted_proxys_forwarded_address_is_the_one_counted(
    item_service_proc: ServiceProcess, tmp_path: Path
) -> None:
    with running_stack(
        item_service_proc, tmp_path, gateway_env={"GATEWAY_TRUSTED_PROXIES": "127.0.0.5/32"}
    ) as stack:
        student = create_student(stack)

        def attempt(source: str, forwarded: str, password: str = "a-wrong-password") -> int:
            body = {"username": student["username"], "password": password}
            headers = {"X-Forwarded-For": forwarded}
            return stack.gateway.exchange("POST", "/api/auth/token", body=body, source=source, headers=headers)[0]

        # Behind the proxy, one classroom guesses: that classroom is held back...
        statuses = [attempt("127.0.0.5", "203.0.113.9") for _ in range(ACCOUNT_ATTEMPTS_AT_MOST)]
        assert 429 in statuses, statuses
        assert attempt("127.0.0.5", "203.0.113.9", PASSWORD) == 429
        # ...not the student in another one behind the same proxy.
        assert attempt("127.0.0.5", "203.0.113.10", PASSWORD) == 200
        # A client that is no trusted proxy cannot borrow an address to get around its hold or to cause one.
        for _ in range(ACCOUNT_ATTEMPTS_AT_MOST):
            attempt("127.0.0.6", f"203.0.113.{uuid.uuid4().int % 200 + 20}")
        assert attempt("127.0.0.6", "203.0.113.11", PASSWORD) == 429
        assert attempt("127.0.0.5", "203.0.113.11", PASSWORD) == 200


def test_a_busy_sign_in_is_a_503_with_retry_after(item_service_proc: ServiceProcess, tmp_path: Path) -> None:
    busy = {
        "SESSION_HASH_WORKERS": "1",
        "SESSION_SIGN_IN_MAX_WAIT_SECONDS": "0",
        "SESSION_PASSWORD_MEMORY_KIB": "65536",
        "SESSION_PASSWORD_TIME_COST": "3",
    }
    with running_stack(item_service_proc, tmp_path, session_env=busy) as stack:
        students = [create_student(stack) for _ in range(6)]

        def attempt(student: dict[str, str]) -> tuple[int, dict[str, str], dict[str, object]]:
            body = {"username": student["username"], "password": PASSWORD}
            return stack.gateway.exchange("POST", "/api/auth/token", body=body)

        with ThreadPoolExecutor(len(students)) as pool:
            replies = list(pool.map(attempt, students))
        statuses = [status for status, _, _ in replies]
        assert set(statuses) == {200, 503}, statuses
        for status, headers, body in replies:
            if status == 503:
                assert body["details"][0]["reason"] == "SIGN_IN_BUSY", body  # type: ignore[index]
                assert int(headers["Retry-After"]) >= 1, headers
