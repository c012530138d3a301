"""Tokens: they expire, forged ones are refused everywhere, and no password or token ever reaches a log."""

from __future__ import annotations

import time
import uuid

import grpc
import jwt
import pytest
from toefl.item.v1 import item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from tests.security.conftest import Stack
from tests.support.tokens import TEST_TOKEN_KEY, token
from toefl_core.auth import DEFAULT_TTL_SECONDS, ISSUER, Role, mint_token

PASSWORD = "a sign-in secret 7f3c"
OTHER_KEY = "another-key-that-is-not-the-services-one-0123"


def bearer(access_token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {access_token}"),)


def create_student(stack: Stack, password: str = PASSWORD) -> dict[str, str]:
    """A student created by an admin through the gateway, as an administration page would."""
    username = f"login-{uuid.uuid4().hex[:10]}"
    body = {"username": username, "displayName": "Login Test", "role": "ROLE_STUDENT", "password": password}
    status, created = stack.gateway.request("POST", "/api/users", token=token(Role.ADMIN, "usr-admin"), body=body)
    assert status == 200, created
    return {"username": username, "userId": created["userId"]}


def sign_in(stack: Stack, username: str, password: str) -> tuple[int, dict[str, object]]:
    return stack.gateway.request("POST", "/api/auth/token", body={"username": username, "password": password})


def claims(signed: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(signed, options={"verify_signature": False})
    return decoded


# ---- every place a token is checked: the gateway and each service


def gateway_code(stack: Stack, access_token: str, user_id: str) -> int:
    return stack.gateway.request("GET", f"/api/users/{user_id}", token=access_token)[0]


def item_service_code(stack: Stack, access_token: str, _user_id: str) -> grpc.StatusCode:
    stub = item_service_pb2_grpc.ItemServiceStub(stack.channels["item_service"])
    try:
        stub.ListItems(item_service_pb2.ListItemsRequest(page_size=1), metadata=bearer(access_token))
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def session_service_code(stack: Stack, access_token: str, user_id: str) -> grpc.StatusCode:
    stub = session_service_pb2_grpc.SessionServiceStub(stack.channels["session_service"])
    try:
        stub.GetUser(pb.GetUserRequest(user_id=user_id), metadata=bearer(access_token))
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def refused_everywhere(stack: Stack, access_token: str, user_id: str) -> None:
    assert gateway_code(stack, access_token, user_id) == 401
    assert item_service_code(stack, access_token, user_id) == grpc.StatusCode.UNAUTHENTICATED
    assert session_service_code(stack, access_token, user_id) == grpc.StatusCode.UNAUTHENTICATED


def accepted_everywhere(stack: Stack, access_token: str, user_id: str) -> None:
    assert gateway_code(stack, access_token, user_id) == 200
    # Every token here is a student's: item_service takes it, then refuses a student the bank by role (a token
    # it did not take would be UNAUTHENTICATED).
    assert item_service_code(stack, access_token, user_id) == grpc.StatusCode.PERMISSION_DENIED
    assert session_service_code(stack, access_token, user_id) == grpc.StatusCode.OK


def test_a_signed_in_token_says_when_it_expires(stack: Stack) -> None:
    student = create_student(stack)
    status, reply = sign_in(stack, student["username"], PASSWORD)
    assert status == 200, reply
    issued = claims(str(reply["accessToken"]))
    assert reply["expiresIn"] == DEFAULT_TTL_SECONDS
    assert issued["exp"] == issued["iat"] + DEFAULT_TTL_SECONDS  # type: ignore[operator]
    assert (issued["sub"], issued["role"], issued["iss"]) == (student["userId"], "student", ISSUER)
    accepted_everywhere(stack, str(reply["accessToken"]), student["userId"])


def test_an_expired_token_is_refused_everywhere(stack: Stack) -> None:
    student = create_student(stack)
    expired = mint_token(
        TEST_TOKEN_KEY, subject=student["userId"], role=Role.STUDENT, ttl_seconds=60, now=time.time() - 3600
    )
    refused_everywhere(stack, expired, student["userId"])
    assert "expired" in stack.gateway.request("GET", "/api/items", token=expired)[1]["message"]


def test_a_token_the_gateway_has_accepted_is_refused_once_it_expires(stack: Stack) -> None:
    """The gateway caches verified tokens; the cache must not outlive the token."""
    student = create_student(stack)
    short = mint_token(TEST_TOKEN_KEY, subject=student["userId"], role=Role.STUDENT, ttl_seconds=2)
    assert gateway_code(stack, short, student["userId"]) == 200
    expiry = float(claims(short)["exp"])  # type: ignore[arg-type]
    while time.time() < expiry + 0.5:
        time.sleep(0.1)
    refused_everywhere(stack, short, student["userId"])


def forged(kind: str, subject: str) -> str:
    now = int(time.time())
    payload = {"sub": subject, "role": "student", "iss": ISSUER, "iat": now, "exp": now + 600}
    if kind == "signed with another key":
        return jwt.encode(payload, OTHER_KEY, algorithm="HS256")
    if kind == "alg none":
        return jwt.encode(payload, None, algorithm="none")
    if kind == "HS512 with the right key":
        return jwt.encode(payload, TEST_TOKEN_KEY, algorithm="HS512")
    if kind == "role raised, signature kept":
        genuine = jwt.encode(payload, TEST_TOKEN_KEY, algorithm="HS256")
        raised = jwt.encode({**payload, "role": "admin"}, OTHER_KEY, algorithm="HS256")
        return ".".join((*raised.split(".")[:2], genuine.split(".")[2]))
    if kind == "another issuer":
        return jwt.encode({**payload, "iss": "someone-else"}, TEST_TOKEN_KEY, algorithm="HS256")
    if kind == "no expiry":
        return jwt.encode({k: v for k, v in payload.items() if k != "exp"}, TEST_TOKEN_KEY, algorithm="HS256")
    raise AssertionError(kind)


FORGERIES = [
    "signed with another key",
    "alg none",
    "HS512 with the right key",
    "role raised, signature kept",
    "another issuer",
    "no expiry",
]


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("kind", FORGERIES)
def test_a_forged_token_is_refused_everywhere(stack: Stack, kind: str) -> None:
    student = create_student(stack)
    # The control: the genuine token of the same claims works at all three.
    accepted_everywhere(stack, token(Role.STUDENT, student["userId"]), student["userId"])
    refused_everywhere(stack, forged(kind, student["userId"]), student["userId"])


def test_no_password_or_token_is_ever_logged(stack: Stack) -> None:
    """Every sign-in path, failed ones included, and CreateUser with a password; then every log is searched."""
    secrets = {
        name: f"{name.replace(' ', '-')}-{uuid.uuid4().hex}"
        for name in ("created password", "wrong password", "unknown user's password", "direct gRPC password")
    }
    secrets["too short a password"] = uuid.uuid4().hex[:6]
    secrets["password in a query"] = f"query-{uuid.uuid4().hex}"
    secrets["admin token"] = token(Role.ADMIN, "usr-admin-logs")
    secrets["the token key"] = TEST_TOKEN_KEY
    admin = secrets["admin token"]
    student = create_student(stack, password=secrets["created password"])
    status, reply = sign_in(stack, student["username"], secrets["created password"])
    assert status == 200, reply
    secrets["issued token"] = str(reply["accessToken"])
    secrets["issued token's signature"] = secrets["issued token"].rsplit(".", 1)[1]
    secrets["forged token"] = forged("signed with another key", student["userId"])

    assert sign_in(stack, student["username"], secrets["wrong password"])[0] == 401
    assert sign_in(stack, f"nobody-{uuid.uuid4().hex[:8]}", secrets["unknown user's password"])[0] == 401
    short = {"username": f"short-{uuid.uuid4().hex[:8]}", "role": "ROLE_STUDENT"}
    short["password"] = secrets["too short a password"]
    assert stack.gateway.request("POST", "/api/users", token=admin, body=short)[0] == 400
    misplaced = f"/api/auth/token?password={secrets['password in a query']}"
    assert stack.gateway.request("POST", misplaced, body={"username": student["username"]})[0] == 400
    assert stack.gateway.request("GET", "/api/classes", token=admin)[0] == 200
    assert stack.gateway.request("GET", f"/api/users/{student['userId']}", token=secrets["issued token"])[0] == 200
    assert stack.gateway.request("GET", "/api/items", token=secrets["forged token"])[0] == 401
    direct = session_service_pb2_grpc.SessionServiceStub(stack.channels["session_service"])
    wrong = pb.AuthenticateRequest(username=student["username"], password=secrets["direct gRPC password"])
    with pytest.raises(grpc.RpcError):
        direct.Authenticate(wrong)

    logs = stack.logs()
    assert '"POST /api/auth/token' in logs and '"POST /api/users' in logs, "the access logs were captured"
    leaked = [name for name, secret in secrets.items() if secret in logs]
    assert leaked == []
