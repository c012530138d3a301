"""Taking the exam in tests: accounts, keyed answers and status codes over gRPC; students on the gateway."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.answers import answer_for
from launcher.stack import Stack
from tests.support.tokens import metadata, token
from toefl_core.auth import Role

Stub = session_service_pb2_grpc.SessionServiceStub
_counter = itertools.count(1)
PASSWORD = "correct horse battery"


def admin() -> tuple[tuple[str, str], ...]:
    return metadata(Role.ADMIN, "usr-test-admin")


def new_user_request(role: pb.Role.ValueType = pb.ROLE_STUDENT, *, class_id: str = "") -> pb.CreateUserRequest:
    """A new account with a unique name and the password PASSWORD, for an admin to create."""
    username = f"u{next(_counter)}-{uuid.uuid4().hex[:8]}"
    return pb.CreateUserRequest(
        user=pb.User(username=username, display_name=username.title(), role=role, password=PASSWORD),
        class_id=class_id,
    )


def new_user(stub: Stub, role: pb.Role.ValueType = pb.ROLE_STUDENT, *, class_id: str = "") -> pb.User:
    return stub.CreateUser(new_user_request(role, class_id=class_id), metadata=admin())


def as_user(user: pb.User) -> tuple[tuple[str, str], ...]:
    role = {pb.ROLE_STUDENT: Role.STUDENT, pb.ROLE_TEACHER: Role.TEACHER, pb.ROLE_ADMIN: Role.ADMIN}[user.role]
    return metadata(role, user.user_id)


def expect_code(code: grpc.StatusCode, call: Callable[[], Any], match: str = "") -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error = info.value
    assert error.code() == code, error.details()
    assert match in (error.details() or ""), error.details()
    return error


@dataclass(frozen=True)
class Refusal:
    """What a program reads in a refusal's google.rpc.Status details: the reason, its metadata, when to retry
    (None: no RetryInfo) and the fields a BadRequest names."""

    code: grpc.StatusCode
    reason: str | None
    metadata: dict[str, str]
    retry_after: float | None
    fields: tuple[str, ...]


def refusal(error: grpc.RpcError) -> Refusal:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # every RpcError raised by a call is a Call
    info, retry, bad = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo(), error_details_pb2.BadRequest()
    found = {"info": False, "retry": False, "bad": False}
    for detail in status.details if status is not None else ():
        found["info"] |= detail.Unpack(info)
        found["retry"] |= detail.Unpack(retry)
        found["bad"] |= detail.Unpack(bad)
    if found["info"]:
        assert info.domain == "toefl", info
    return Refusal(
        code=error.code(),
        reason=info.reason if found["info"] else None,
        metadata=dict(info.metadata),
        retry_after=retry.retry_delay.ToNanoseconds() / 1e9 if found["retry"] else None,
        fields=tuple(v.field for v in bad.field_violations),
    )


def expect_reason(code: grpc.StatusCode, call: Callable[[], Any], reason: str, match: str = "") -> Refusal:
    """The call is refused with `code`, a message holding `match` and an ErrorInfo of `reason`."""
    found = refusal(expect_code(code, call, match))
    assert found.reason == reason, found
    return found


def full_items(
    item_stub: item_service_pb2_grpc.ItemServiceStub, items: Sequence[item_pb2.Item]
) -> list[item_pb2.Item]:
    """The FULL view of the items at the revisions the session pinned (keys included), as a test may read them."""
    reply = item_stub.BatchGetItems(
        item_service_pb2.BatchGetItemsRequest(
            items=[item_service_pb2.ItemRef(item_id=i.item_id, revision=i.revision) for i in items],
            view=item_pb2.ITEM_VIEW_FULL,
        ),
        metadata=metadata(Role.SERVICE, "tests"),
    )
    return list(reply.items)


def answer(item: item_pb2.Item, *, correct: bool) -> pb.Answer:
    """A well-formed answer from the key: right when `correct`, otherwise wrong."""
    key = item.answer_key
    t = item.task_type
    if t == item_pb2.TASK_TYPE_COMPLETE_THE_WORDS:
        values = [k if correct else ("q" if k[:1].lower() != "q" else "x") * len(k) for k in key.completions]
        return pb.Answer(completions=pb.StringList(values=values))
    if t == item_pb2.TASK_TYPE_BUILD_A_SENTENCE:
        words = list(key.correct_sequence) if correct else list(reversed(key.correct_sequence))
        return pb.Answer(word_sequence=pb.StringList(values=words))
    if t in (item_pb2.TASK_TYPE_WRITE_AN_EMAIL, item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION):
        return pb.Answer(text="Thank you for the message. I would like to join the study group next week.")
    if t in (item_pb2.TASK_TYPE_LISTEN_AND_REPEAT, item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW):
        return pb.Answer(speech=pb.SpeechResponse(audio_ref=f"audio/test/{item.item_id}.webm", duration_ms=4000))
    options = len(item.content.options)
    return pb.Answer(choice_index=key.correct_option if correct else (key.correct_option + 1) % options)


def request_id() -> str:
    return uuid.uuid4().hex


# Students answering through the gateway (the fault and fuzz tests): HTTP, as a browser sends it.
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
                user = await stub.CreateUser(new_user_request(), metadata=admin())
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
