"""The gateway's JSON printer gives exactly what json_format.MessageToDict gives, edge values included."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from gateway.jsonout import JsonPrinter


def reference(message: Message) -> Any:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def echo_messages(pb: ModuleType) -> list[Message]:
    empty = pb.EchoRequest()
    full = pb.EchoRequest(
        flag=True,
        small=-7,
        big=-(2**62),
        ubig=2**64 - 1,
        ratio=1 / 3,
        approx=0.1,
        text="héllo ✓",
        blob=b"\x00\xff\x10",
        color=pb.COLOR_GREEN,
        words=["a", "", "c"],
        numbers=[0, 2**40, -1],
        colors=[pb.COLOR_RED, 42],
        inner=pb.Inner(label="l", count=3, deeper=pb.Deeper(flag=True)),
        mask={"paths": ["inner.deeper", "text"]},
        maybe_count={"value": 0},
        maybe_flag={"value": False},
        maybe_text="",
        choice_text="picked",
        labels={"k": "v", "": "empty"},
        scores={-3: 1.5, 2**40: float("inf")},
        by_flag={True: pb.Inner(label="t"), False: pb.Inner()},
        inners=[pb.Inner(), pb.Inner(count=-1)],
        maybe_name={"value": "n"},
        color_by_name={"x": pb.COLOR_RED, "y": 17},
        maybe_color=pb.COLOR_UNSPECIFIED,
        blobs=[b"", b"abc"],
        ratios=[math.nan, -math.inf, 0.0, -0.0, 1e300, 5e-324],
    )
    full.when.FromJsonString("2026-01-02T03:04:05.123456789Z")
    full.wait.FromJsonString("-1.5s")
    full.times.add().FromJsonString("1970-01-01T00:00:00Z")
    full.extra.update({"n": 1, "s": "x", "l": [1, "a", None], "o": {"b": True}})
    full.any_value.list_value.extend([1.25, None])
    floats = pb.EchoRequest(approx=math.nan, ratio=-math.inf, choice_number=0)
    odd_float = pb.EchoRequest(approx=3.4e38, ratio=math.inf, colors=[99])
    return [empty, full, floats, odd_float, pb.EchoResponse(request=full, metadata={"a": "b"})]


def test_matches_json_format_on_every_edge(gwtest_pb: ModuleType) -> None:
    printer = JsonPrinter()
    for message in echo_messages(gwtest_pb):
        assert printer.message_json(message) == reference(message)


def test_matches_json_format_on_a_status_with_details() -> None:
    status = status_pb2.Status(code=3, message="bad")
    violation = error_details_pb2.BadRequest.FieldViolation(field="f", description="d")
    status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    assert JsonPrinter().message_json(status) == reference(status)


@pytest.mark.parametrize("value", [0.1, 1.1754943508222875e-38, 16777217.0, -2.5])
def test_float32_uses_the_shortest_repr(gwtest_pb: ModuleType, value: float) -> None:
    message = gwtest_pb.EchoRequest(approx=value)
    assert JsonPrinter().message_json(message)["approx"] == reference(message)["approx"]


def test_shared_content_is_converted_once_per_content_and_stays_right(gwtest_pb: ModuleType) -> None:
    printer = JsonPrinter(shared=["gwtest.v1.Inner"], shared_limit=2)
    first = gwtest_pb.EchoRequest(
        inners=[gwtest_pb.Inner(label="a", count=1)], inner=gwtest_pb.Inner(label="a", count=1)
    )
    again = gwtest_pb.EchoRequest(inners=[gwtest_pb.Inner(label="a", count=1)])
    one, two = printer.message_json(first), printer.message_json(again)
    assert one == reference(first) and two == reference(again)
    # The same content, in another field and another reply: the one JSON value made for it.
    assert one["inner"] is one["inners"][0] is two["inners"][0]
    changed = gwtest_pb.EchoRequest(inners=[gwtest_pb.Inner(label="a", count=2), gwtest_pb.Inner(label="b")])
    assert printer.message_json(changed) == reference(changed)
    # The limit is two per type: the content used least recently (again's, before changed's two) was forgotten.
    assert printer.message_json(again)["inners"][0] is not two["inners"][0]
    assert printer.message_json(again) == reference(again)
