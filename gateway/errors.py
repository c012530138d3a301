"""gRPC status -> HTTP status mapping and google.rpc.Status JSON bodies for every error the gateway answers."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence

import grpc
from aiohttp import web
from aiohttp.typedefs import LooseHeaders
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

log = logging.getLogger(__name__)

# As grpc-gateway maps them (HTTPStatusFromCode in its runtime/errors.go), so a client written against
# grpc-gateway reads the same statuses here; any code not listed is a 500.
HTTP_STATUS_BY_CODE: dict[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}

# The gateway's own refusals that have no gRPC twin keep their own HTTP status but still carry a gRPC code.
CODE_BY_HTTP_STATUS: dict[int, int] = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    405: code_pb2.UNIMPLEMENTED,
    408: code_pb2.DEADLINE_EXCEEDED,
    409: code_pb2.ABORTED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    499: code_pb2.CANCELLED,
    501: code_pb2.UNIMPLEMENTED,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}

JSON_CONTENT_TYPE = "application/json"

# What a client is told of an error the gRPC library produced rather than one of our servicers; any other code
# is an internal error.
LIBRARY_MESSAGES: dict[int, str] = {
    code_pb2.CANCELLED: "the request was cancelled",
    code_pb2.DEADLINE_EXCEEDED: "the service did not answer in time; the request may or may not have taken effect",
    code_pb2.RESOURCE_EXHAUSTED: "the request or its answer exceeds a limit of the service",
    code_pb2.UNIMPLEMENTED: "the service does not offer this method",
    code_pb2.UNAVAILABLE: "the service is unavailable; retry shortly",
}


def http_status_for(code: int) -> int:
    return int(HTTP_STATUS_BY_CODE.get(code, 500))


def code_for_http_status(http_status: int) -> int:
    if http_status in CODE_BY_HTTP_STATUS:
        return int(CODE_BY_HTTP_STATUS[http_status])
    return int(code_pb2.INTERNAL if http_status >= 500 else code_pb2.UNKNOWN)


class GatewayError(Exception):
    """An error the gateway answers itself, before or instead of calling a backend."""

    def __init__(
        self,
        http_status: int,
        message: str,
        *,
        code: int | None = None,
        details: Sequence[Message] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.code = code_for_http_status(http_status) if code is None else code
        self.details = tuple(details)
        self.headers = headers or {}

    def status(self) -> status_pb2.Status:
        status = status_pb2.Status(code=self.code, message=self.message)
        for detail in self.details:
            status.details.add().Pack(detail)
        return status


def bad_request(message: str, *, field: str | None = None) -> GatewayError:
    """A 400 whose BadRequest detail names the offending field or parameter, as the services' own errors do."""
    details: list[Message] = []
    if field is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
        details.append(error_details_pb2.BadRequest(field_violations=[violation]))
    return GatewayError(400, message, details=details)


def status_from_rpc_error(error: grpc.aio.AioRpcError, request_id: str, call: str) -> status_pb2.Status:
    """The status a client is told: the backend's own google.rpc.Status (our servicers always send one in
    `grpc-status-details-bin`) as it is; for an error the gRPC library made up, a plain message per code, the
    library's text (peer addresses, transport internals) going to the log under the request id instead."""
    try:
        # AioRpcError answers the same synchronous code()/details()/trailing_metadata() as a grpc.Call.
        rich = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        rich = None
    if rich is not None:
        return rich
    code = error.code()
    log.warning("%s failed in gRPC (request id %s): %s: %s", call, request_id, code.name, error.details())
    message = LIBRARY_MESSAGES.get(code.value[0]) or (
        f"internal error; the gateway log has the details under request id {request_id}"
    )
    return status_pb2.Status(code=code.value[0], message=message)


def body_refusal_status(status: status_pb2.Status, body_field: str) -> int | None:
    """The HTTP status of a service's refusal of a google.api.HttpBody request body itself, which gRPC has no code
    for: INVALID_ARGUMENT naming the body's `content_type` is a 415 (a type the service does not take), and
    OUT_OF_RANGE naming its `data` a 413 (more bytes than the service takes). None: the usual mapping."""
    prefix = f"{body_field}." if body_field else ""
    wanted = {
        code_pb2.INVALID_ARGUMENT: (f"{prefix}content_type", 415),
        code_pb2.OUT_OF_RANGE: (f"{prefix}data", 413),
    }.get(status.code)
    if wanted is None:
        return None
    named: set[str] = set()
    for detail in status.details:
        # The field is named by a BadRequest (INVALID_ARGUMENT) or by an ErrorInfo's "field" (any code).
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            named.update(violation.field for violation in bad.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            named.add(info.metadata.get("field", ""))
    return wanted[1] if wanted[0] in named else None


def retry_after(status: status_pb2.Status) -> str | None:
    """Retry-After in whole seconds (at least 1): the RetryInfo's delay rounded up, else 1 for an UNAVAILABLE
    that says nothing more (a backend out of reach), else none."""
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            nanos = info.retry_delay.seconds * 1_000_000_000 + info.retry_delay.nanos
            return str(max(1, -(-nanos // 1_000_000_000)))
    if status.code == code_pb2.UNAVAILABLE and not status.details:
        return "1"
    return None


def _detail_json(detail: any_pb2.Any) -> dict[str, object]:
    try:
        rendered: dict[str, object] = json_format.MessageToDict(detail)
    except (TypeError, KeyError, json_format.Error):
        # A detail type this process does not know: keep it, opaque, rather than lose it.
        return {"@type": detail.type_url, "value": base64.b64encode(detail.value).decode()}
    return rendered


def status_json(status: status_pb2.Status) -> dict[str, object]:
    """`{"code", "message", "details"}` with every detail decoded to JSON including its "@type"."""
    return {
        "code": status.code,
        "message": status.message,
        "details": [_detail_json(detail) for detail in status.details],
    }


def status_body(status: status_pb2.Status) -> bytes:
    return json.dumps(status_json(status), separators=(",", ":")).encode()


def error_response(
    status: status_pb2.Status, *, http_status: int | None = None, headers: LooseHeaders | None = None
) -> web.Response:
    return web.Response(
        body=status_body(status),
        status=http_status_for(status.code) if http_status is None else http_status,
        content_type=JSON_CONTENT_TYPE,
        headers=headers,
    )


def gateway_error_response(error: GatewayError) -> web.Response:
    return error_response(error.status(), http_status=error.http_status, headers=error.headers)
