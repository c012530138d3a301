"""The one interceptor: domain errors become their status codes, anything else a bare INTERNAL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from launcher.procs import REPO_ROOT
from toefl_core.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from toefl_core.grpc_errors import ERROR_DOMAIN, error_info, status_proto
from toefl_core.server import RunningServer, start_server, stop_server

FAILURES: dict[str, Exception] = {
    "invalid": InvalidArgument("page_size must be 1..1000", field="page_size"),
    "limited": ResourceExhausted("try again tomorrow", reason="DAILY_SESSION_LIMIT", retry_after_seconds=90.25),
    "missing": NotFound("item itm-1 not found"),
    "unimplemented": NotImplementedError(),
    "crash": RuntimeError("secret internal detail"),
}


def _register(server: grpc.aio.Server) -> None:
    def handler(name: str, error: Exception) -> grpc.RpcMethodHandler[bytes, bytes]:
        async def behave(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            raise error

        return grpc.unary_unary_rpc_method_handler(behave)

    handlers = {name: handler(name, error) for name, error in FAILURES.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Failing", handlers),))


@pytest.fixture
async def running() -> AsyncIterator[RunningServer]:
    started = await start_server(address="127.0.0.1:0", register=_register, service_names=["test.Failing"])
    yield started
    await stop_server(started, grace=0)


async def _call(running: RunningServer, name: str) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(running.address) as channel:
        call = channel.unary_unary(f"/test.Failing/{name}", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(b"", metadata=(("x-request-id", "req-42"),), timeout=5)
    return info.value


async def test_invalid_argument_names_the_field_in_a_bad_request_detail(running: RunningServer) -> None:
    error = await _call(running, "invalid")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError carries the same trailers
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert detail.field_violations[0].field == "page_size"


def test_status_proto_carries_the_reason_and_the_retry_delay() -> None:
    error = ResourceExhausted(
        "too many failed sign-ins; try again in 61 s",
        reason="SIGN_IN_THROTTLED",
        metadata={"limit": "account"},
        retry_after_seconds=60.5,
    )
    status = status_proto(error)
    assert (status.code, status.message) == (grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], error.message)
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert [status.details[0].Unpack(info), status.details[1].Unpack(retry)] == [True, True]
    assert (info.reason, info.domain) == ("SIGN_IN_THROTTLED", ERROR_DOMAIN)
    assert dict(info.metadata) == {"limit": "account"}
    assert retry.retry_delay.ToNanoseconds() == 60_500_000_000


def test_status_proto_names_the_field_in_both_details_and_adds_nothing_without_a_reason() -> None:
    status = status_proto(InvalidArgument("session_id is required", field="session_id", reason="EXAMPLE"))
    bad, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
    assert [status.details[0].Unpack(bad), status.details[1].Unpack(info)] == [True, True]
    assert bad.field_violations[0].field == "session_id" and dict(info.metadata) == {"field": "session_id"}
    assert len(status.details) == 2
    assert not status_proto(FailedPrecondition("plain")).details
    # A delay already over is "now", never negative.
    late = status_proto(ResourceExhausted("x", retry_after_seconds=-1.0))
    retry = error_details_pb2.RetryInfo()
    assert late.details[0].Unpack(retry) and retry.retry_delay.ToNanoseconds() == 0


async def test_the_reason_and_retry_delay_reach_the_client(running: RunningServer) -> None:
    error = await _call(running, "limited")
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert [status.details[0].Unpack(info), status.details[1].Unpack(retry)] == [True, True]
    assert info.reason == "DAILY_SESSION_LIMIT" and retry.retry_delay.ToMilliseconds() == 90_250
    # What session_service reads of item_service's refusals, to pass their reason on.
    passed_on = error_info(error)
    assert passed_on is not None and passed_on.reason == "DAILY_SESSION_LIMIT"
    assert error_info(await _call(running, "missing")) is None


async def test_not_found_and_unimplemented(running: RunningServer) -> None:
    assert (await _call(running, "missing")).code() == grpc.StatusCode.NOT_FOUND
    assert (await _call(running, "unimplemented")).code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_crash_is_internal_with_the_request_id_and_no_detail(
    running: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    error = await _call(running, "crash")
    assert error.code() == grpc.StatusCode.INTERNAL
    message = error.details() or ""
    assert "req-42" in message and "secret" not in message and "Traceback" not in message
    assert "request_id=req-42" in caplog.text and "secret internal detail" in caplog.text


def _readme_reasons() -> set[str]:
    text = (REPO_ROOT / "README.md").read_text()
    table = text[text.index("## Errors") : text.index("## Psychometrics")]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", table, flags=re.MULTILINE))


def _raised_reasons() -> set[str]:
    found: set[str] = set()
    for package in ("toefl_core", "item_service", "session_service"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            found.update(re.findall(r'reason=[^"\n]*"([A-Z][A-Z0-9_]+)"', path.read_text()))
    return found


def test_the_readme_table_lists_exactly_the_reasons_the_services_give() -> None:
    # A client branches on these: one given but not listed, or listed but never given, misleads it.
    assert _raised_reasons() == _readme_reasons()
