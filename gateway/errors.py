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


def status_from_rpc_error(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The rich status from `grpc-status-details-bin` when the backend sent one, else code and message alone."""
    try:
        # AioRpcError answers the same synchronous code()/details()/trailing_metadata() as a grpc.Call.
        rich = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        rich = None
    if rich is not None:
        return rich
    return status_pb2.Status(code=error.code().value[0], message=error.details() or "")


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
