"""Test helpers: accounts, simulated students answering from the keys, and status-code assertions."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from tests.support.tokens import metadata
from toefl_core.auth import Role

Stub = session_service_pb2_grpc.SessionServiceStub
_counter = itertools.count(1)
PASSWORD = "correct horse battery"


def admin() -> tuple[tuple[str, str], ...]:
    return metadata(Role.ADMIN, "usr-test-admin")


def new_user(stub: Stub, role: pb.Role.ValueType = pb.ROLE_STUDENT, *, class_id: str = "") -> pb.User:
    username = f"u{next(_counter)}-{uuid.uuid4().hex[:8]}"
    return stub.CreateUser(
        pb.CreateUserRequest(
            user=pb.User(username=username, display_name=username.title(), role=role, password=PASSWORD),
            class_id=class_id,
        ),
        metadata=admin(),
    )


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
