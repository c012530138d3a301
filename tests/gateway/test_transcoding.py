"""The generic machinery over the test-only gwtest proto: routing, request building, JSON, errors, metadata."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner

from gateway.__main__ import StatusAppRunner
from gateway.app import create_app
from gateway.backends import Backend
from gateway.errors import LIBRARY_MESSAGES
from tests.gateway.backend import GatewayTestBackend
from tests.gateway.conftest import ALLOWED_ORIGIN, MAX_BODY_BYTES, gateway_settings
from tests.support.tokens import TEST_TOKEN_KEY, token
from toefl_core.auth import Role, mint_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

# grpc-gateway's mapping of gRPC codes to HTTP statuses (HTTPStatusFromCode), written out again here rather
# than read from the code under test.
HTTP_BY_CODE = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400}
HTTP_BY_CODE.update({12: 501, 13: 500, 14: 503, 15: 500, 16: 401})
AUTH = {"Authorization": f"Bearer {token(Role.STUDENT)}"}
LOGIN = "gwtest.v1.GatewayTest.Login"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def backend(gwtest_pb: ModuleType) -> AsyncIterator[GatewayTestBackend]:
    running = await GatewayTestBackend(gwtest_pb, name="alpha", owner="item_bank", fingerprint="fp-alpha").start()
    yield running
    await running.stop()


class GatewayTestServer(TestServer):
    """The app behind the gateway's own connection handler, as `python -m gateway` serves it."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        # TestServer cancels a handler whose client hangs up; the gateway's runner, like aiohttp's, does not.
        kwargs["handler_cancellation"] = False
        return StatusAppRunner(self.app, **kwargs)


@asynccontextmanager
async def gateway_client(
    gwtest_pb: ModuleType, backend_address: str, **settings: Any
) -> AsyncIterator[TestClient[Any, Any]]:
    """A gateway in front of the gwtest service at `backend_address`, with these settings overridden."""
    service = gwtest_pb.DESCRIPTOR.services_by_name["GatewayTest"]
    backends = [Backend("alpha", backend_address, (service,), "item_bank", frozenset({LOGIN}))]
    async with TestClient(GatewayTestServer(create_app(gateway_settings(**settings), backends))) as test_client:
        yield test_client


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(gwtest_pb: ModuleType, backend: GatewayTestBackend) -> AsyncIterator[TestClient[Any, Any]]:
    async with gateway_client(gwtest_pb, backend.address) as test_client:
        yield test_client


async def call(
    client: TestClient[Any, Any],
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any, Any]:
    all_headers = {**AUTH, **(headers or {})}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    async with client.request(method, url, data=data, headers=all_headers) as response:
        text = await response.text()
        payload = json.loads(text) if response.content_type == "application/json" else text
        return response.status, payload, response.headers


def contains(actual: Any, expected: Any) -> bool:
    """Every key of `expected` present in `actual` with a matching value, recursively (lists element-wise)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(contains, actual, expected))
    return bool(actual == expected)


def assert_status_body(payload: Any, code: int) -> None:
    assert set(payload) == {"code", "message", "details"}, payload
    assert payload["code"] == code
    assert isinstance(payload["message"], str) and payload["message"]
    assert isinstance(payload["details"], list)
    assert "Traceback" not in payload["message"]


OK_CASES: list[tuple[str, str, str, Any, dict[str, Any]]] = [
    ("path variable", "GET", "/v1/things/abc", None, {"thingId": "abc", "name": "name of abc", "shelf": ""}),
    ("percent-decoded variable", "GET", "/v1/things/a%20b", None, {"thingId": "a b"}),
    ("additional binding", "GET", "/v1/shelves/s1/things/abc", None, {"thingId": "abc", "shelf": "s1"}),
    ("resource name pattern", "GET", "/v1/rooms/r1/things/t1", None, {"name": "rooms/r1/things/t1"}),
    ("double wildcard", "GET", "/v1/files/a/b/c.txt", None, {"path": "a/b/c.txt"}),
    ("literal beats variable", "GET", "/v1/things/special", None, {"thingId": "special-literal"}),
    ("variable when the literal lacks the method", "DELETE", "/v1/things/special", None, {"thingId": "special"}),
    (
        "body * in lowerCamelCase",
        "POST",
        "/v1/things:batchGet",
        {"thingIds": ["x", "y"], "color": "COLOR_GREEN"},
        {"things": [{"thingId": "x", "color": "COLOR_GREEN"}, {"thingId": "y", "color": "COLOR_GREEN"}]},
    ),
    (
        "body * in proto names, enum by number",
        "POST",
        "/v1/things:batchGet",
        {"thing_ids": ["z"], "color": 1},
        {"things": [{"thingId": "z", "color": "COLOR_RED"}]},
    ),
    ("empty body *", "POST", "/v1/things:batchGet", None, {"things": []}),
    (
        "body field plus query",
        "POST",
        "/v1/things?request_id=r1",
        {"name": "n", "tags": ["t"]},
        {"thingId": "r1", "name": "n", "tags": ["t"]},
    ),
    (
        "nested path variable, body field, FieldMask query",
        "PATCH",
        "/v1/things/t9?updateMask=name,createTime",
        {"name": "new"},
        {"thingId": "t9", "name": "new", "tags": ["name", "create_time"]},
    ),
    (
        "enum path parameter",
        "GET",
        "/v1/colors/COLOR_GREEN/things?thingIds=a",
        None,
        {"things": [{"thingId": "a", "color": "COLOR_GREEN"}]},
    ),
    (
        "enum path parameter by number",
        "GET",
        "/v1/colors/1/things?thingIds=b",
        None,
        {"things": [{"color": "COLOR_RED"}]},
    ),
    ("custom verb", "POST", "/v1/things/t1:act", {"action": "poke"}, {"thingId": "t1", "name": "poke"}),
    ("repeated body field", "PUT", "/v1/things/t1/tags", ["x", "y"], {"thingId": "t1", "tags": ["x", "y"]}),
    ("custom method kind", "PATCH", "/v1/echo:custom", {"text": "c"}, {"request": {"text": "c"}}),
]


@pytest.mark.parametrize(
    ("method", "url", "body", "expected"), [c[1:] for c in OK_CASES], ids=[c[0] for c in OK_CASES]
)
async def test_mapping(client: TestClient[Any, Any], method: str, url: str, body: Any, expected: Any) -> None:
    status, payload, _headers = await call(client, method, url, body)
    assert status == 200, payload
    assert contains(payload, expected), payload


async def test_canonical_json_out(client: TestClient[Any, Any]) -> None:
    _status, payload, headers = await call(client, "GET", "/v1/things/abc")
    # int64 as a string, enum by name, unpopulated scalars and lists present, unset messages absent.
    assert payload == {
        "thingId": "abc",
        "name": "name of abc",
        "color": "COLOR_RED",
        "size": str(2**40),
        "tags": ["a", "b"],
        "shelf": "",
        "path": "",
    }
    assert headers["Content-Type"].startswith("application/json")


async def test_response_body_narrows_the_answer(client: TestClient[Any, Any]) -> None:
    status, payload, _headers = await call(client, "GET", "/v1/things/t1/name")
    assert (status, payload) == (200, "name of t1")


async def test_query_parameters_convert_by_field_type(client: TestClient[Any, Any]) -> None:
    query = (
        "flag=true&small=-5&big=9007199254740993&ubig=18446744073709551615&ratio=2.5&approx=0.5"
        "&text=hi%20there&blob=AAE&color=COLOR_GREEN&words=a&words=b&numbers=1&numbers=-2"
        "&colors=1&colors=COLOR_GREEN&inner.label=L&inner.count=3&inner.deeper.flag=1"
        "&when=2026-01-02T03:04:05Z&mask=a,innerLabel&maybeCount=0&maybe_flag=false&maybeText=&choiceNumber=7"
        "&maybeName=nm&wait=1.5s&times=2026-01-01T00:00:00Z&times=2026-01-02T00:00:00Z&blobs=YQ&blobs=_w"
    )
    status, payload, _headers = await call(client, "GET", f"/v1/echo?{query}")
    assert status == 200, payload
    echoed = payload["request"]
    assert echoed["flag"] is True
    assert echoed["small"] == -5
    assert echoed["big"] == "9007199254740993"
    assert echoed["ubig"] == "18446744073709551615"
    assert echoed["ratio"] == 2.5 and echoed["approx"] == 0.5
    assert echoed["text"] == "hi there"
    assert echoed["blob"] == "AAE="
    assert echoed["color"] == "COLOR_GREEN"
    assert echoed["words"] == ["a", "b"] and echoed["numbers"] == ["1", "-2"]
    assert echoed["colors"] == ["COLOR_RED", "COLOR_GREEN"]
    assert echoed["inner"] == {"label": "L", "count": 3, "deeper": {"flag": True}, "shades": []}
    assert echoed["when"] == "2026-01-02T03:04:05Z"
    assert echoed["mask"] == "a,innerLabel"
    assert echoed["maybeCount"] == 0 and echoed["maybeFlag"] is False and echoed["maybeText"] == ""
    assert echoed["choiceNumber"] == 7 and "choiceText" not in echoed
    assert echoed["maybeName"] == "nm" and echoed["wait"] == "1.500s"
    assert echoed["times"] == ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]
    assert echoed["blobs"] == ["YQ==", "/w=="]


ERROR_CASES: list[tuple[str, str, str, Any, int, int, str]] = [
    ("unknown path", "GET", "/v1/nope", None, 404, 5, "no route"),
    ("unknown verb", "GET", "/v1/things:frobnicate", None, 404, 5, "no route"),
    ("unannotated rpc is not routed", "GET", "/v1/hidden", None, 404, 5, "no route"),
    ("backend NOT_FOUND", "GET", "/v1/things/missing", None, 404, 5, "no thing"),
    ("unknown query parameter", "GET", "/v1/echo?bogus=1", None, 400, 3, "bogus"),
    ("bad bool", "GET", "/v1/echo?flag=maybe", None, 400, 3, "flag"),
    ("bad integer", "GET", "/v1/echo?small=abc", None, 400, 3, "small"),
    ("int32 out of range", "GET", "/v1/echo?small=99999999999", None, 400, 3, "small"),
    ("bad double", "GET", "/v1/echo?ratio=lots", None, 400, 3, "ratio"),
    ("unknown enum name", "GET", "/v1/echo?color=PURPLE", None, 400, 3, "COLOR_GREEN"),
    ("unknown enum number", "GET", "/v1/echo?color=9", None, 400, 3, "color"),
    ("bad base64", "GET", "/v1/echo?blob=!!", None, 400, 3, "blob"),
    ("bad timestamp", "GET", "/v1/echo?when=yesterday", None, 400, 3, "when"),
    ("message-valued parameter", "GET", "/v1/echo?inner=x", None, 400, 3, "inner"),
    ("map parameter", "GET", "/v1/echo?labels.k=v", None, 400, 3, "labels.k"),
    ("inside a Struct", "GET", "/v1/echo?extra.fields=x", None, 400, 3, "extra.fields"),
    ("inside a repeated message", "GET", "/v1/echo?inners.label=x", None, 400, 3, "inners.label"),
    ("bad duration", "GET", "/v1/echo?wait=soon", None, 400, 3, "wait"),
    ("singular given twice", "GET", "/v1/echo?text=a&text=b", None, 400, 3, "more than once"),
    ("two members of a oneof", "GET", "/v1/echo?choiceText=a&choiceNumber=1", None, 400, 3, "oneof"),
    ("query names a path-bound field", "GET", "/v1/things/t1?thing_id=x", None, 400, 3, "thing_id"),
    ("query on a body-* route", "POST", "/v1/things:batchGet?color=1", {}, 400, 3, "color"),
    ("query names a body-bound field", "POST", "/v1/things?thing.name=x", {}, 400, 3, "thing.name"),
    ("unknown body field", "POST", "/v1/things:batchGet", {"bogus": 1}, 400, 3, "bogus"),
    ("unknown nested body field", "POST", "/v1/things", {"nam": "x"}, 400, 3, "nam"),
    ("body of the wrong type", "POST", "/v1/things:batchGet", {"thingIds": "x"}, 400, 3, "thingIds"),
    ("body * not an object", "POST", "/v1/things:batchGet", [1], 400, 3, "JSON object"),
    ("unknown enum number in a body", "POST", "/v1/things:batchGet", {"color": 7}, 400, 3, "color: 7 is not a"),
    ("negative enum number", "POST", "/v1/things:batchGet", {"color": -1}, 400, 3, "color: -1 is not a"),
    ("enum number as a string", "POST", "/v1/things:batchGet", {"color": "7"}, 400, 3, "color: 7"),
    # json_format would truncate 2.5 (or 1e-42) to a defined number and read true as 1.
    ("non-integral enum number", "POST", "/v1/things:batchGet", {"color": 2.5}, 400, 3, "color: 2.5 is not a"),
    ("tiny enum number", "POST", "/v1/things:batchGet", {"color": 1e-42}, 400, 3, "color: 1e-42 is not a"),
    ("boolean enum", "POST", "/v1/echo", {"colors": [1, True]}, 400, 3, "colors[1]: True is not a"),
    (
        "boolean enum map value",
        "POST",
        "/v1/echo",
        {"colorByName": {"k": False}},
        400,
        3,
        "color_by_name[k]: False",
    ),
    ("enum in a body field", "POST", "/v1/things", {"color": 3}, 400, 3, "thing.color: 3"),
    ("optional enum", "POST", "/v1/echo", {"maybeColor": 5}, 400, 3, "maybe_color: 5"),
    ("repeated enum", "POST", "/v1/echo", {"colors": [1, 9]}, 400, 3, "colors[1]: 9"),
    ("nested enum", "POST", "/v1/echo", {"inner": {"shades": [4]}}, 400, 3, "inner.shades[0]: 4"),
    (
        "enum in a repeated message",
        "POST",
        "/v1/echo",
        {"inners": [{}, {"shades": [2, 8]}]},
        400,
        3,
        "inners[1].shades[1]: 8",
    ),
    ("enum map value", "POST", "/v1/echo", {"colorByName": {"k": 6}}, 400, 3, "color_by_name[k]: 6"),
    ("repeated enum query parameter", "GET", "/v1/echo?colors=1&colors=7", None, 400, 3, "colors"),
    ("enum path parameter by number", "GET", "/v1/colors/7/things", None, 400, 3, "color"),
    ("enum path parameter by name", "GET", "/v1/colors/PURPLE/things", None, 400, 3, "COLOR_GREEN"),
    ("unknown enum name in a body", "POST", "/v1/things:batchGet", {"color": "PURPLE"}, 400, 3, "PURPLE"),
    ("wrong method", "PUT", "/v1/things/t1", None, 405, 12, "allowed: DELETE, GET, PATCH"),
    ("verb path with the wrong method", "GET", "/v1/things/t1:act", None, 405, 12, "allowed: POST"),
]


@pytest.mark.parametrize(
    ("method", "url", "body", "http_status", "code", "needle"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
async def test_error_paths(
    client: TestClient[Any, Any], method: str, url: str, body: Any, http_status: int, code: int, needle: str
) -> None:
    status, payload, _headers = await call(client, method, url, body)
    assert status == http_status, payload
    assert_status_body(payload, code)
    assert needle in payload["message"]


async def test_query_errors_name_the_parameter_in_a_bad_request_detail(client: TestClient[Any, Any]) -> None:
    _status, payload, _headers = await call(client, "GET", "/v1/echo?small=abc")
    assert payload["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "small", "description": payload["message"]}],
        }
    ]


async def test_405_has_an_allow_header(client: TestClient[Any, Any]) -> None:
    status, _payload, headers = await call(client, "PUT", "/v1/things/t1")
    assert status == 405
    assert headers["Allow"] == "DELETE, GET, PATCH"


async def test_malformed_json_is_400(client: TestClient[Any, Any]) -> None:
    headers = {"Content-Type": "application/json"}
    status, payload, _headers = await call(
        client, "POST", "/v1/things:batchGet", raw=b"{not json", headers=headers
    )
    assert status == 400
    assert_status_body(payload, 3)
    assert "malformed JSON" in payload["message"]


async def test_wrong_content_type_is_415(client: TestClient[Any, Any]) -> None:
    headers = {"Content-Type": "text/plain"}
    status, payload, _headers = await call(client, "POST", "/v1/things:batchGet", raw=b"{}", headers=headers)
    assert status == 415
    assert_status_body(payload, 3)


async def test_body_over_the_limit_is_413(client: TestClient[Any, Any]) -> None:
    big = {"thingIds": ["x" * 100] * (MAX_BODY_BYTES // 100 + 1)}
    status, payload, _headers = await call(client, "POST", "/v1/things:batchGet", big)
    assert status == 413
    assert_status_body(payload, 8)


async def test_a_body_on_a_route_without_one_is_400(client: TestClient[Any, Any]) -> None:
    headers = {"Content-Type": "application/json"}
    status, payload, _headers = await call(client, "DELETE", "/v1/things/t1", raw=b'{"x": 1}', headers=headers)
    assert status == 400
    assert "takes no request body" in payload["message"]


AUTH_CASES = [
    ("missing", None, "missing bearer token"),
    ("not bearer", "Basic dXNlcjpwYXNz", "Bearer <token>"),
    ("empty bearer", "Bearer ", "Bearer <token>"),
    ("garbage", "Bearer not-a-jwt", "invalid token"),
    (
        "wrong key",
        f"Bearer {mint_token('another-key-of-at-least-32-chars!!', subject='x', role=Role.ADMIN)}",
        "invalid",
    ),
    ("expired", f"Bearer {mint_token(TEST_TOKEN_KEY, subject='x', role=Role.ADMIN, now=1e9)}", "expired"),
]


@pytest.mark.parametrize(("authorization", "needle"), [c[1:] for c in AUTH_CASES], ids=[c[0] for c in AUTH_CASES])
async def test_401_without_a_valid_token(
    client: TestClient[Any, Any], authorization: str | None, needle: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with client.get("/v1/things/t1", headers=headers) as response:
        payload = await response.json()
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert_status_body(payload, 16)
    assert needle in payload["message"]


async def test_public_method_needs_no_token(client: TestClient[Any, Any]) -> None:
    async with client.post("/v1/login", json={"username": "ann"}) as response:
        assert response.status == 200
        assert await response.json() == {"accessToken": "token-for-ann"}


@pytest.mark.parametrize(
    ("code", "http_status"),
    sorted(HTTP_BY_CODE.items()),
)
async def test_grpc_status_maps_to_http(client: TestClient[Any, Any], code: int, http_status: int) -> None:
    status, payload, _headers = await call(client, "POST", "/v1/fail", {"code": code, "message": f"failed {code}"})
    assert status == http_status
    assert payload == {"code": code, "message": f"failed {code}", "details": []}


async def test_error_details_are_decoded(client: TestClient[Any, Any]) -> None:
    body = {"code": 3, "message": "bad size", "field": "thing.size"}
    status, payload, _headers = await call(client, "POST", "/v1/fail", body)
    assert status == 400
    assert payload["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "thing.size", "description": "bad size"}],
        }
    ]


async def test_retry_info_and_error_info_keep_their_shape_and_set_retry_after(
    client: TestClient[Any, Any],
) -> None:
    body = {"code": 8, "message": "slow down", "retryDelay": "1.200s", "reason": "DAILY_LIMIT"}
    status, payload, headers = await call(client, "POST", "/v1/fail", body)
    assert (status, headers["Retry-After"]) == (429, "2")
    assert payload == {
        "code": 8,
        "message": "slow down",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "DAILY_LIMIT",
                "domain": "gwtest.example",
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.200s"},
        ],
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"code": 14, "message": "busy", "retryDelay": "0s"}, "1"),
        ({"code": 14, "message": "busy", "retryDelay": "3s"}, "3"),
        ({"code": 14, "message": "busy", "retryDelay": "3.000000001s"}, "4"),
        ({"code": 14, "message": "shutting down"}, "1"),
        ({"code": 14, "message": "no database", "field": "x"}, None),
        ({"code": 9, "message": "closed"}, None),
    ],
    ids=[
        "zero delay is 1",
        "whole seconds",
        "rounded up",
        "bare UNAVAILABLE",
        "UNAVAILABLE with details",
        "other",
    ],
)
async def test_retry_after(client: TestClient[Any, Any], body: dict[str, Any], expected: str | None) -> None:
    _status, payload, headers = await call(client, "POST", "/v1/fail", body)
    assert headers.get("Retry-After") == expected
    assert payload["message"] == body["message"]


async def test_an_error_without_details_is_told_plainly_and_logged(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    body = {"code": 13, "message": "ipv4:10.0.0.7:50051: stream reset", "plain": True}
    with caplog.at_level(logging.WARNING, logger="gateway.errors"):
        status, payload, headers = await call(client, "POST", "/v1/fail", body, {"X-Request-Id": "plain-1"})
    assert status == 500
    assert payload == {
        "code": 13,
        "message": "internal error; the gateway log has the details under request id plain-1",
        "details": [],
    }
    assert "Retry-After" not in headers
    [record] = [record for record in caplog.records if record.name == "gateway.errors"]
    assert record.levelno == logging.WARNING and "plain-1" in record.getMessage()
    assert "ipv4:10.0.0.7:50051: stream reset" in record.getMessage()


async def test_an_unreachable_backend_is_503_without_addresses(
    gwtest_pb: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1.
    async with gateway_client(gwtest_pb, "127.0.0.1:1") as unreachable:
        with caplog.at_level(logging.WARNING, logger="gateway.errors"):
            status, payload, headers = await call(
                unreachable, "GET", "/v1/things/t1", headers={"X-Request-Id": "down-1"}
            )
    assert (status, headers["Retry-After"]) == (503, "1")
    assert payload == {"code": 14, "message": "the service is unavailable; retry shortly", "details": []}
    text = json.dumps(payload) + "".join(f"{k}: {v}" for k, v in headers.items())
    assert "ipv4" not in text and "127.0.0.1" not in text and "connect" not in text.lower()
    [record] = [record for record in caplog.records if record.name == "gateway.errors"]
    assert "down-1" in record.getMessage() and "UNAVAILABLE" in record.getMessage()


async def test_grpc_timeout_header_sets_the_deadline(client: TestClient[Any, Any]) -> None:
    status, payload, _headers = await call(client, "GET", "/v1/sleep?seconds=5", headers={"Grpc-Timeout": "50m"})
    assert status == 504
    assert_status_body(payload, 4)
    # Made by the gRPC library, not a servicer: a plain message, not the library's "Deadline Exceeded".
    assert payload["message"] == LIBRARY_MESSAGES[4]
    status, payload, _headers = await call(client, "GET", "/v1/sleep?seconds=0.01", headers={"Grpc-Timeout": "5S"})
    assert (status, payload) == (200, {"slept": 0.01})


async def test_a_huge_grpc_timeout_is_capped_not_an_instant_504(client: TestClient[Any, Any]) -> None:
    # 2562048 hours overflows a 64-bit nanosecond deadline; uncapped, gRPC fails the call at once.
    headers = {"Grpc-Timeout": "2562048H"}
    status, payload, _headers = await call(client, "GET", "/v1/sleep?seconds=0.01", headers=headers)
    assert (status, payload) == (200, {"slept": 0.01})


async def test_grpc_timeout_is_cut_down_to_the_maximum(gwtest_pb: ModuleType, backend: GatewayTestBackend) -> None:
    async with gateway_client(gwtest_pb, backend.address, max_timeout=0.2, default_timeout=0.2) as capped:
        started = time.monotonic()
        status, payload, _headers = await call(
            capped, "GET", "/v1/sleep?seconds=5", headers={"Grpc-Timeout": "99999999H"}
        )
        assert status == 504, payload
        assert time.monotonic() - started < 3


@pytest.mark.parametrize("value", ["abc", "5 seconds", "5s", "1.5S", "-1S", "123456789S", "S", "5SS"])
async def test_malformed_grpc_timeout_is_400(client: TestClient[Any, Any], value: str) -> None:
    status, payload, _headers = await call(client, "GET", "/v1/sleep", headers={"Grpc-Timeout": value})
    assert status == 400
    assert_status_body(payload, 3)
    assert "Grpc-Timeout" in payload["message"] and "1 to 8 digits" in payload["message"]


async def test_metadata_is_forwarded(client: TestClient[Any, Any]) -> None:
    headers = {
        "Grpc-Metadata-Tenant": "acme",
        "Grpc-Metadata-Trace-Bin": base64.b64encode(b"\x01\x02").decode(),
        "X-Request-Id": "req-123",
    }
    status, payload, response_headers = await call(client, "GET", "/v1/echo", headers=headers)
    assert status == 200
    assert payload["metadata"] == {
        "tenant": "acme",
        "trace-bin": "AQI=",
        "x-request-id": "req-123",
        "x-forwarded-for": "127.0.0.1",
        "authorization": AUTH["Authorization"],
    }
    assert response_headers["X-Request-Id"] == "req-123"
    # A client cannot choose the address sign-in throttling counts by.
    spoofed = {"Grpc-Metadata-X-Forwarded-For": "10.9.9.9"}
    status, payload, _headers = await call(client, "GET", "/v1/echo", headers=spoofed)
    assert status == 400 and "x-forwarded-for" in payload["message"].lower()


async def test_request_id_is_generated_when_missing(client: TestClient[Any, Any]) -> None:
    _status, payload, headers = await call(client, "GET", "/v1/echo")
    generated = headers["X-Request-Id"]
    assert len(generated) == 32
    assert payload["metadata"]["x-request-id"] == generated
    _status, _payload, error_headers = await call(client, "GET", "/v1/nope")
    assert len(error_headers["X-Request-Id"]) == 32


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Request-Id": "has spaces"},
        {"Grpc-Metadata-Grpc-Timeout": "1S"},
        {"Grpc-Metadata-Authorization": f"Bearer {token(Role.ADMIN)}"},
        {"Grpc-Metadata-X-Request-Id": "spoofed"},
        {"Grpc-Metadata-Trace-Bin": "!!"},
    ],
    ids=[
        "bad request id",
        "grpc-internal metadata",
        "token smuggling",
        "second request id",
        "bad binary metadata",
    ],
)
async def test_bad_metadata_headers_are_400(client: TestClient[Any, Any], headers: dict[str, str]) -> None:
    status, payload, _headers = await call(client, "GET", "/v1/echo", headers=headers)
    assert status == 400
    assert_status_body(payload, 3)


async def test_response_metadata_comes_back_as_headers(client: TestClient[Any, Any]) -> None:
    _status, _payload, headers = await call(client, "GET", "/v1/things/t1")
    assert headers["Grpc-Metadata-x-thing-header"] == "from-backend"
    assert headers["Grpc-Metadata-x-thing-trailer"] == "done"
    assert headers["Grpc-Metadata-x-raw-bin"] == "AAE="


async def test_ndjson_stream(client: TestClient[Any, Any]) -> None:
    status, text, headers = await call(client, "GET", "/v1/things:stream?count=3")
    assert status == 200
    assert headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["result"]["thingId"] for line in lines] == ["t0", "t1", "t2"]
    assert lines[2]["result"]["size"] == "2"


async def test_ndjson_stream_ends_with_an_error_object(client: TestClient[Any, Any]) -> None:
    _status, text, _headers = await call(client, "GET", "/v1/things:stream?count=2&failCode=14")
    lines = [json.loads(line) for line in text.splitlines()]
    assert [set(line) for line in lines] == [{"result"}, {"result"}, {"error"}]
    assert lines[-1]["error"] == {"code": 14, "message": "stream broke", "details": []}


async def test_gateway_failure_mid_stream_ends_it_with_an_internal_error(client: TestClient[Any, Any]) -> None:
    _status, text, headers = await call(client, "GET", "/v1/things:stream?count=1&outOfTime=true")
    lines = [json.loads(line) for line in text.splitlines()]
    assert [set(line) for line in lines] == [{"result"}, {"error"}]
    assert lines[-1]["error"]["code"] == 13
    assert headers["X-Request-Id"] in lines[-1]["error"]["message"]
    assert "Timestamp" not in lines[-1]["error"]["message"]


async def test_stream_failing_before_the_first_message_is_a_plain_error(client: TestClient[Any, Any]) -> None:
    status, payload, _headers = await call(client, "GET", "/v1/things:stream?count=0&failCode=5")
    assert status == 404
    assert payload == {"code": 5, "message": "stream broke", "details": []}


@pytest.mark.parametrize(
    ("url", "headers", "low", "high"),
    [
        ("/v1/things:stream?reportDeadline=true", {}, 50, 60),
        ("/v1/things:stream?reportDeadline=true", {"Grpc-Timeout": "5S"}, 3, 5),
        ("/v1/things:stream?reportDeadline=true", {"Grpc-Timeout": "2H"}, 50, 60),
    ],
    ids=["no-header", "header", "header-capped"],
)
async def test_a_stream_gets_the_longest_deadline_unless_the_client_names_one(
    client: TestClient[Any, Any], url: str, headers: dict[str, str], low: int, high: int
) -> None:
    status, text, _headers = await call(client, "GET", url, headers=headers)
    assert status == 200
    (line,) = [json.loads(line) for line in text.splitlines()]
    # The settings of these tests: 10 s for a unary call without the header, 60 s at most.
    assert low <= int(line["result"]["size"]) <= high, line


async def test_server_sent_events(client: TestClient[Any, Any]) -> None:
    headers = {"Accept": "text/event-stream"}
    status, text, response_headers = await call(
        client, "GET", "/v1/things:stream?count=2&failCode=13", headers=headers
    )
    assert status == 200
    assert response_headers["Content-Type"].startswith("text/event-stream")
    events = [block for block in text.split("\n\n") if block]
    assert [json.loads(e.removeprefix("data: "))["result"]["thingId"] for e in events[:2]] == ["t0", "t1"]
    name, data = events[2].split("\n")
    assert name == "event: error"
    assert json.loads(data.removeprefix("data: "))["error"]["code"] == 13


async def test_unexpected_failure_is_a_500_status_without_traceback(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="gateway.app"):
        status, payload, headers = await call(client, "GET", "/v1/things/out-of-time")
    assert status == 500
    assert_status_body(payload, 13)
    assert headers["X-Request-Id"] in payload["message"]
    assert "Timestamp" not in payload["message"]
    assert any("Traceback" in record or "Timestamp" in record for record in caplog.text.splitlines())


async def test_cors_preflight_from_an_allowed_origin(client: TestClient[Any, Any]) -> None:
    headers = {
        "Origin": ALLOWED_ORIGIN,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with client.options("/v1/things/t1", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        assert "PATCH" in response.headers["Access-Control-Allow-Methods"]


async def test_cors_preflight_from_a_refused_origin(client: TestClient[Any, Any]) -> None:
    headers = {"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    async with client.options("/v1/things/t1", headers=headers) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers
        assert_status_body(await response.json(), 7)


async def test_cors_headers_on_actual_requests(client: TestClient[Any, Any]) -> None:
    _status, _payload, headers = await call(client, "GET", "/v1/things/t1", headers={"Origin": ALLOWED_ORIGIN})
    assert headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    _status, _payload, headers = await call(
        client, "GET", "/v1/things/t1", headers={"Origin": "http://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in headers


async def test_metrics_count_requests_errors_and_backend_errors(client: TestClient[Any, Any]) -> None:
    await call(client, "GET", "/v1/things/abc")
    await call(client, "GET", "/v1/things/missing")
    async with client.get("/metrics") as response:
        assert response.status == 200
        text = await response.text()
    assert 'gateway_http_requests_total{method="GET",route="GET /v1/things/{thing_id}",status="200"}' in text
    assert 'gateway_http_errors_total{code="NOT_FOUND",method="GET",route="GET /v1/things/{thing_id}"}' in text
    assert 'gateway_backend_errors_total{backend="alpha",code="NOT_FOUND"}' in text
    assert (
        'gateway_http_request_duration_seconds_bucket{le="0.005",method="GET",route="GET /v1/things/{thing_id}"}'
        in text
    )


async def test_healthz(client: TestClient[Any, Any]) -> None:
    async with client.get("/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "alive"}


MALFORMED_HTTP = {
    "garbage": b"\x16\x03\x01 not HTTP at all\r\n\r\n",
    "bad request line": b"GET /v1/echo HTTP/1.1 extra\r\nHost: gw\r\n\r\n",
    "bad header": b"GET /v1/echo HTTP/1.1\r\nHost: gw\r\nBad Header: x\r\n\r\n",
    "bad chunk size": (
        b"POST /v1/things:batchGet HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("raw", MALFORMED_HTTP.values(), ids=MALFORMED_HTTP.keys())
async def test_malformed_http_is_a_400_and_one_warning_without_traceback(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture, raw: bytes
) -> None:
    with caplog.at_level(logging.DEBUG):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        try:
            writer.write(raw)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400"), answer
    assert_status_body(json.loads(body), 3)
    noisy = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.levelno for record in noisy] == [logging.WARNING], caplog.text
    assert "malformed HTTP request" in noisy[0].getMessage()
    assert not any(record.exc_info for record in caplog.records), caplog.text
    assert "Traceback" not in caplog.text


async def test_a_body_cut_short_is_one_warning_without_traceback(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    head = (
        b"POST /v1/login HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
    )
    with caplog.at_level(logging.DEBUG):
        _reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(0.1)
        # The client goes away before sending the 100 bytes it announced.
        writer.close()
        await writer.wait_closed()
        for _ in range(50):
            if any(record.levelno >= logging.WARNING for record in caplog.records):
                break
            await asyncio.sleep(0.02)
    noisy = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.levelno for record in noisy] == [logging.WARNING], caplog.text
    assert "incomplete body" in noisy[0].getMessage()
    assert not any(record.exc_info for record in caplog.records), caplog.text
